// Command gohost is a minimal go-plugin host used by pluginconf's interop tests.
//
// It launches a plugin with go-plugin's own client (handshake, optional
// AutoMTLS, gRPC dial, broker stream), pings it through the health service,
// kills it the way go-plugin always does (GRPCController.Shutdown, then a
// bounded wait for the process to exit), and prints one JSON line describing
// what happened. On any error it prints {"error": "..."} and exits 1.
//
// It builds in GOPATH mode against the Debian go-plugin packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o gohost main.go
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is pluginconf's default application handshake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGINCONF_MAGIC_COOKIE",
	MagicCookieValue: "pluginconf",
}

// pluginName is the single entry of the plugin set.
const pluginName = "hooks"

// hooksPlugin is a gRPC-only plugin whose client side is the raw connection:
// dispensing it proves the plugin set is wired without calling any hook.
type hooksPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (hooksPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("gohost only hosts plugins")
}

func (hooksPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return conn, nil
}

// forcedKillMessage is what go-plugin's Client.Kill logs when the plugin did
// not exit within its grace period after Shutdown and had to be killed.
const forcedKillMessage = "plugin failed to exit gracefully"

// logWatch passes log output to stderr and remembers whether go-plugin
// reported a forced kill (Client.killed() is not exported).
type logWatch struct {
	mu     sync.Mutex
	forced bool
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	if strings.Contains(string(p), forcedKillMessage) {
		w.forced = true
	}
	w.mu.Unlock()
	return os.Stderr.Write(p)
}

func (w *logWatch) Forced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.forced
}

// Result is the JSON line printed on success.
type Result struct {
	NegotiatedVersion int     `json:"negotiated_version"`
	Protocol          string  `json:"protocol"`
	Network           string  `json:"network"`
	Address           string  `json:"address"`
	PluginPid         int     `json:"plugin_pid"`
	Dispensed         bool    `json:"dispensed"`
	Pings             int     `json:"pings"`
	KillMs            float64 `json:"kill_ms"`
	Graceful          bool    `json:"graceful"`
	Exited            bool    `json:"exited"`
	AutoMTLS          bool    `json:"automtls"`
}

func emit(v interface{}) {
	line, err := json.Marshal(v)
	if err != nil {
		line = []byte(`{"error":"cannot encode result"}`)
	}
	fmt.Println(string(line))
}

func fail(format string, args ...interface{}) {
	emit(map[string]string{"error": fmt.Sprintf(format, args...)})
	os.Exit(1)
}

// probeTLS repeats go-plugin's AutoMTLS handshake on a connection of its own to
// explain a failed ping: gRPC only reports that the connection closed.
func probeTLS(base *tls.Config, rc *plugin.ReattachConfig) string {
	if base == nil || rc == nil {
		return "no TLS configuration or address to probe"
	}
	cfg := base.Clone()
	cfg.NextProtos = []string{"h2"}
	var notes []string
	// Go's default choice, made visible: the first certificate the request accepts.
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		for i := range base.Certificates {
			err := cri.SupportsCertificate(&base.Certificates[i])
			if err == nil {
				return &base.Certificates[i], nil
			}
			notes = append(notes, fmt.Sprintf(
				"the plugin's certificate request does not accept go-plugin's client certificate "+
					"(%v); it offered %v, so no client certificate is sent", err, cri.SignatureSchemes))
		}
		return &tls.Certificate{}, nil
	}
	conn, err := net.DialTimeout(rc.Addr.Network(), rc.Addr.String(), 5*time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer conn.Close()
	tc := tls.Client(conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		notes = append(notes, "handshake: "+err.Error())
		return strings.Join(notes, "; ")
	}
	version := map[uint16]string{tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"}[tc.ConnectionState().Version]
	// With TLS 1.3 the server judges the client certificate after the client's
	// handshake is done, so its verdict shows on the first read.
	_, _ = tc.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	if _, err := tc.Read(make([]byte, 1)); err != nil {
		notes = append(notes, fmt.Sprintf("%s handshake completed, then the plugin closed the connection: %v", version, err))
	} else {
		notes = append(notes, version+" handshake and HTTP/2 preface accepted")
	}
	return strings.Join(notes, "; ")
}

func main() {
	pluginCmd := flag.String("plugin-cmd", "", "path of the plugin executable; trailing arguments are passed to it")
	autoMTLS := flag.Bool("automtls", false, "negotiate go-plugin AutoMTLS")
	pings := flag.Int("pings", 3, "number of health pings")
	startTimeout := flag.Duration("start-timeout", 30*time.Second, "how long to wait for the handshake line")
	deadline := flag.Duration("deadline", 90*time.Second, "give up (and exit 2) after this long")
	flag.Parse()

	if *pluginCmd == "" {
		fail("-plugin-cmd is required")
	}

	watchdog := time.AfterFunc(*deadline, func() {
		emit(map[string]string{"error": fmt.Sprintf("gohost did not finish within %s", *deadline)})
		os.Exit(2)
	})
	defer watchdog.Stop()

	watch := &logWatch{}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "gohost",
		Output: watch,
		Level:  hclog.Debug,
	})

	config := &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{pluginName: hooksPlugin{}},
		Cmd:              exec.Command(*pluginCmd, flag.Args()...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         *autoMTLS,
		StartTimeout:     *startTimeout,
		Logger:           logger,
	}
	client := plugin.NewClient(config)

	// fatal kills the plugin before reporting, so no process outlives gohost.
	fatal := func(format string, args ...interface{}) {
		client.Kill()
		fail(format, args...)
	}

	rpcClient, err := client.Client()
	if err != nil {
		fatal("connect: %s", err)
	}

	res := Result{
		NegotiatedVersion: client.NegotiatedVersion(),
		Protocol:          string(client.Protocol()),
		AutoMTLS:          *autoMTLS,
	}
	if rc := client.ReattachConfig(); rc != nil {
		res.Network = rc.Addr.Network()
		res.Address = rc.Addr.String()
		res.PluginPid = rc.Pid
	}

	raw, err := rpcClient.Dispense(pluginName)
	if err != nil {
		fatal("dispense %q: %s", pluginName, err)
	}
	_, res.Dispensed = raw.(*grpc.ClientConn)

	for i := 0; i < *pings; i++ {
		if err := rpcClient.Ping(); err != nil {
			msg := fmt.Sprintf("ping %d of %d: %s", i+1, *pings, err)
			if *autoMTLS {
				// go-plugin filled config.TLSConfig with its AutoMTLS settings in Start.
				msg += "; tls probe: " + probeTLS(config.TLSConfig, client.ReattachConfig())
			}
			fatal("%s", msg)
		}
		res.Pings++
	}

	start := time.Now()
	client.Kill()
	res.KillMs = float64(time.Since(start).Microseconds()) / 1000
	res.Graceful = !watch.Forced()
	res.Exited = client.Exited()
	if !res.Exited {
		fail("plugin process still running after Kill")
	}
	emit(res)
}
