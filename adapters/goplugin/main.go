// Command goplugin-adapter is a pluginconf host adapter over go-plugin's own client.
//
// It is a small host built the way Go applications build on go-plugin (Terraform, Vault,
// Mattermost's supervisor): plugin.Client launches each plugin, runs the handshake and dials
// it; Dispense gives a gRPC client of pluginconf.v1.Hooks; Kill stops it. Around that it adds
// the thin supervision such hosts write themselves (restarts with backoff and a limit, health
// checks) and an HTTP front on net/http. It serves pluginconf.conformance.v1.HostControl at
// PLUGINCONF_CONTROL_ADDRESS so that `pluginconf host` can judge that host.
//
// Build it with adapters/goplugin/build.sh; docs/host-adapter.md ("A Go host") explains it.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	ctl "pluginconf.dev/goplugin-adapter/pb/controlv1"
)

// Answers of a few MiB (TR-10) and the suite's own 16 MiB limit must pass through.
const controlMessageLimit = 64 << 20

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "goplugin-adapter",
		Output: os.Stderr,
		Level:  hclog.Info,
	})
	address := os.Getenv("PLUGINCONF_CONTROL_ADDRESS")
	if address == "" {
		fmt.Fprintln(os.Stderr, "goplugin-adapter: PLUGINCONF_CONTROL_ADDRESS is not set; "+
			"this program is a host adapter: run it as `pluginconf host -- <this binary>`")
		os.Exit(2)
	}
	listener, err := listen(address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "goplugin-adapter: cannot listen on PLUGINCONF_CONTROL_ADDRESS %q: %v\n", address, err)
		os.Exit(2)
	}

	host := newHost(logger)
	front, err := startFront(host, logger.Named("front"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "goplugin-adapter: cannot start the HTTP front: %v\n", err)
		os.Exit(2)
	}

	// Signals first, so that a SIGTERM arriving as soon as HostControl answers is not lost.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	server := grpc.NewServer(
		grpc.MaxRecvMsgSize(controlMessageLimit),
		grpc.MaxSendMsgSize(controlMessageLimit),
	)
	ctl.RegisterHostControlServer(server, &control{host: host, front: front})
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	logger.Info("serving HostControl", "address", address, "front", front.baseURL)

	select {
	case sig := <-signals:
		// SV-19: every plugin by the stop sequence, all at once, before the host exits.
		logger.Info("stopping every plugin", "signal", sig.String())
		host.stopAll()
	case err := <-served:
		logger.Error("HostControl stopped serving", "error", err)
		host.stopAll()
	}
	server.Stop()
	front.close()
}

// listen accepts the gRPC targets the suite gives: "unix:PATH", "unix://PATH" or "HOST:PORT".
func listen(address string) (net.Listener, error) {
	switch {
	case strings.HasPrefix(address, "unix://"):
		return net.Listen("unix", strings.TrimPrefix(address, "unix://"))
	case strings.HasPrefix(address, "unix:"):
		return net.Listen("unix", strings.TrimPrefix(address, "unix:"))
	default:
		return net.Listen("tcp", strings.TrimPrefix(address, "dns:///"))
	}
}
