package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	hclog "github.com/hashicorp/go-hclog"
	"golang.org/x/net/http/httpguts"

	pc "pluginconf.dev/goplugin-adapter/pb/pluginconfv1"
)

// Request body frames carry at most this much (SH-10).
const requestFrameBytes = 64 << 10

// The hop-by-hop fields never forwarded, in either direction (SE-8).
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
}

// front is the host's HTTP front: /plugins/ID/... streams through plugin ID's ServeHTTP.
type front struct {
	host     *host
	log      hclog.Logger
	server   *http.Server
	listener net.Listener
	baseURL  string
}

func startFront(h *host, logger hclog.Logger) (*front, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &front{host: h, log: logger, listener: listener, baseURL: "http://" + listener.Addr().String()}
	// No timeouts: an exchange may last minutes (SH-23).
	f.server = &http.Server{
		Handler:  f,
		ErrorLog: log.New(logger.StandardWriter(&hclog.StandardLoggerOptions{}), "", 0),
	}
	go func() { _ = f.server.Serve(listener) }()
	return f, nil
}

func (f *front) close() { _ = f.server.Close() }

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The request target as received: still percent-encoded and not normalised (SH-3, SH-4).
	target := r.RequestURI
	rawPath, rawQuery := target, ""
	if i := strings.IndexByte(target, '?'); i >= 0 {
		rawPath, rawQuery = target[:i], target[i+1:]
	}
	if !strings.HasPrefix(rawPath, "/plugins/") {
		http.Error(w, "not found: plugins are served under /plugins/ID/", http.StatusNotFound)
		return
	}
	id, path := rawPath[len("/plugins/"):], "/"
	if i := strings.IndexByte(id, '/'); i >= 0 {
		id, path = id[:i], id[i:]
	}
	m := f.host.get(id)
	if m == nil {
		http.Error(w, fmt.Sprintf("no plugin %q", id), http.StatusNotFound)
		return
	}
	if lists, known := m.listsServeHTTP(); known && !lists {
		http.Error(w, fmt.Sprintf("plugin %q does not serve HTTP", id), http.StatusNotFound) // SE-2
		return
	}
	proc := m.activeProcess()
	if proc == nil {
		w.Header().Set("Retry-After", "1") // SE-3
		http.Error(w, fmt.Sprintf("plugin %q is not active", id), http.StatusServiceUnavailable)
		return
	}
	if limit := m.settings.maxBody; limit > 0 && r.ContentLength > limit {
		http.Error(w, fmt.Sprintf("the request body of %d bytes exceeds the limit of %d", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
		return
	}
	f.exchange(w, r, m, proc, &pc.HTTPRequestInit{
		Method:        wireText(r.Method),
		Path:          wireText(path),
		RawQuery:      wireText(rawQuery),
		Headers:       requestHeaders(r),
		ContentLength: r.ContentLength,
		RemoteAddr:    r.RemoteAddr,
	})
}

// requestHeaders is every request field but the hop-by-hop ones (SH-5, SE-8), names in
// lower case (SH-6), each with its values in order.
func requestHeaders(r *http.Request) []*pc.HTTPHeader {
	skip := connectionNamed(r.Header)
	names := make([]string, 0, len(r.Header)+1)
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	headers := []*pc.HTTPHeader{}
	if r.Host != "" {
		// net/http moves Host out of the header map.
		headers = append(headers, &pc.HTTPHeader{Name: "host", Values: []string{wireText(r.Host)}})
	}
	for _, name := range names {
		lower := strings.ToLower(name)
		if hopByHop[lower] || skip[lower] || lower == "host" {
			continue
		}
		values := make([]string, len(r.Header[name]))
		for i, value := range r.Header[name] {
			values[i] = wireText(value)
		}
		headers = append(headers, &pc.HTTPHeader{Name: wireText(lower), Values: values})
	}
	return headers
}

// wireText is the bytes as protobuf text: UTF-8 as it is, anything else read as ISO-8859-1
// (SH section intro), since a proto string must be valid UTF-8.
func wireText(raw string) string {
	if utf8.ValidString(raw) {
		return raw
	}
	runes := make([]rune, len(raw))
	for i := 0; i < len(raw); i++ {
		runes[i] = rune(raw[i])
	}
	return string(runes)
}

// connectionNamed is the set of fields named in Connection (SE-8).
func connectionNamed(h http.Header) map[string]bool {
	return connectionTokens(h.Values("Connection"))
}

// connectionTokens is the set of field names, in lower case, that Connection values list.
func connectionTokens(values []string) map[string]bool {
	named := map[string]bool{}
	for _, value := range values {
		for _, token := range strings.Split(value, ",") {
			if token = strings.TrimSpace(strings.ToLower(token)); token != "" {
				named[token] = true
			}
		}
	}
	return named
}

// exchange streams one request through ServeHTTP in full duplex (SH-17).
func (f *front) exchange(w http.ResponseWriter, r *http.Request, m *managed, proc *process, init *pc.HTTPRequestInit) {
	// No deadline (SH-23); cancelled when the client goes (SH-20) or the process exits (SV-5).
	// r.Context() also ends when this handler returns, before the call may have completed:
	// it cancels the call only while the handler runs.
	ctx, cancel := proc.callContext(0)
	handlerDone := make(chan struct{})
	defer close(handlerDone)
	go func() {
		select {
		case <-r.Context().Done():
			select {
			case <-handlerDone:
			default:
				cancel()
			}
		case <-handlerDone:
		case <-ctx.Done():
		}
	}()
	x := &exchange{w: w, r: r, cancel: cancel, stop: make(chan struct{}), sent: make(chan struct{}), bodyRead: r.ContentLength == 0}
	stream, err := proc.hooks.ServeHTTP(ctx)
	if err == nil {
		err = stream.Send(&pc.HTTPRequestFrame{Frame: &pc.HTTPRequestFrame_Init{Init: init}})
	}
	if err != nil {
		x.fail(http.StatusBadGateway, fmt.Sprintf("plugin %q: ServeHTTP failed: %s", m.id, describeStatus(err)))
		return
	}
	go x.sendBody(stream, m.settings.maxBody)
	completing := false
	defer func() {
		if !completing {
			x.stopSending()
		}
	}()

	started := false
	flusher, _ := w.(http.Flusher)
	for {
		frame, err := stream.Recv()
		if err != nil {
			switch {
			case x.tooLarge() && !started:
				x.fail(http.StatusRequestEntityTooLarge, "the request body exceeds the limit") // SE-7
			case !started:
				reason := "the call ended without a response"
				if !errors.Is(err, io.EOF) {
					reason = describeStatus(err)
				}
				x.fail(http.StatusBadGateway, fmt.Sprintf("plugin %q: ServeHTTP failed before the response: %s", m.id, reason)) // SE-5
			default:
				x.abort() // SE-6: the client sees a truncated response
			}
			return
		}
		switch body := frame.GetFrame().(type) {
		case *pc.HTTPResponseFrame_Init:
			if started {
				f.log.Warn("a second response init", "plugin", m.id)
				x.abort()
			}
			if problem := x.writeHead(body.Init); problem != "" {
				x.fail(http.StatusBadGateway, fmt.Sprintf("plugin %q: %s", m.id, problem)) // SE-5
				return
			}
			started = true
		case *pc.HTTPResponseFrame_Body:
			if !started {
				x.fail(http.StatusBadGateway, fmt.Sprintf("plugin %q: the first response frame is not init", m.id))
				return
			}
			if _, err := w.Write(body.Body); err != nil {
				// The client went away, or the plugin sent more than its Content-Length.
				x.abort()
			}
			if flusher != nil {
				flusher.Flush() // SH-16
			}
		case *pc.HTTPResponseFrame_Flush:
			if started && flusher != nil {
				flusher.Flush() // SH-15
			}
		case *pc.HTTPResponseFrame_End:
			if !started {
				x.fail(http.StatusBadGateway, fmt.Sprintf("plugin %q: the response ended before its init", m.id))
				return
			}
			if body.End.GetError() != "" {
				f.log.Warn("the plugin's handler failed after the response started", "plugin", m.id, "error", body.End.GetError())
				x.abort() // SE-6
			}
			if !x.wholeBodyRead() {
				// Complete before the whole request was sent: no more request frames (SH-18).
				x.stopSending()
				return
			}
			// Complete: returning completes the response; the call completes after the
			// request's end and half-close, which the sender is sending.
			completing = true
			go x.complete(stream)
			return
		default:
			if !started {
				x.fail(http.StatusBadGateway, fmt.Sprintf("plugin %q: an empty response frame", m.id))
				return
			}
			x.abort()
		}
	}
}

// exchange is one request's state between the body sender and the response writer.
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	cancel context.CancelFunc
	stop   chan struct{}
	sent   chan struct{} // closed when sendBody has returned
	once   sync.Once

	mu       sync.Mutex
	bodyRead bool // the whole request body has been read from the client
	large    bool // the body outgrew the limit (SE-7)
}

// sendBody streams the request body in frames, then end and the half-close (SH-1).
func (x *exchange) sendBody(stream pc.Hooks_ServeHTTPClient, limit int64) {
	defer close(x.sent)
	buf := make([]byte, requestFrameBytes)
	var total int64
	for {
		select {
		case <-x.stop:
			return
		default:
		}
		n, readErr := x.r.Body.Read(buf)
		if n > 0 {
			total += int64(n)
			if limit > 0 && total > limit {
				x.mu.Lock()
				x.large = true
				x.mu.Unlock()
				x.cancel() // SE-7: the call ends; the response says why
				return
			}
			frame := &pc.HTTPRequestFrame{Frame: &pc.HTTPRequestFrame_Body{Body: append([]byte(nil), buf[:n]...)}}
			if stream.Send(frame) != nil {
				return // the call has ended: its outcome comes from Recv (SH-18, SH-26)
			}
		}
		if readErr == io.EOF {
			x.mu.Lock()
			x.bodyRead = true
			x.mu.Unlock()
			select {
			case <-x.stop:
				return
			default:
			}
			if stream.Send(&pc.HTTPRequestFrame{Frame: &pc.HTTPRequestFrame_End{End: &pc.HTTPRequestEnd{}}}) == nil {
				_ = stream.CloseSend()
			}
			return
		}
		if readErr != nil {
			x.cancel() // the client went away mid-body (SH-20)
			return
		}
	}
}

// stopSending ends the body sender at its next frame and the call itself. The sender may
// still be in a Read of the client's body: net/http's HTTP/1 server lets that Read end on
// its own, after the response is complete.
func (x *exchange) stopSending() {
	x.once.Do(func() {
		close(x.stop)
		x.cancel()
	})
}

// callCompletionGuard bounds how long a call whose response has ended may take to complete.
const callCompletionGuard = 10 * time.Second

// complete lets a call whose response has ended finish after the request's end and
// half-close, then releases it.
func (x *exchange) complete(stream pc.Hooks_ServeHTTPClient) {
	defer x.stopSending()
	guard := time.NewTimer(callCompletionGuard)
	defer guard.Stop()
	select {
	case <-x.sent:
	case <-guard.C:
		return
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	select {
	case <-finished:
	case <-guard.C:
	}
}

func (x *exchange) wholeBodyRead() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.bodyRead
}

func (x *exchange) tooLarge() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.large
}

// keepReadingBody: Go 1.19's HTTP/1 server, before it writes a response head, discards up
// to 256 KiB of an unread request body or waits on the body's lock, which a pending Read
// holds; "Connection: close" is its only way out of both, so that the body can still stream
// while the response does (full duplex, SH-17).
func (x *exchange) keepReadingBody() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.bodyRead {
		x.w.Header().Set("Connection", "close")
	}
}

// fail answers an error status, when the response has not started.
func (x *exchange) fail(code int, message string) {
	x.stopSending()
	x.keepReadingBody()
	if code == http.StatusServiceUnavailable {
		x.w.Header().Set("Retry-After", "1")
	}
	http.Error(x.w, message, code)
}

// abort ends a started response so that the client sees it truncated (SE-6).
func (x *exchange) abort() {
	x.stopSending()
	panic(http.ErrAbortHandler)
}

// writeHead sends the status and headers, or says why they cannot be (SE-5).
func (x *exchange) writeHead(init *pc.HTTPResponseInit) string {
	if problem := checkResponseHead(init); problem != "" {
		return problem
	}
	header := x.w.Header()
	var connection []string
	for _, h := range init.GetHeaders() {
		if strings.EqualFold(h.GetName(), "connection") {
			connection = append(connection, h.GetValues()...)
		}
	}
	named := connectionTokens(connection)
	for _, h := range init.GetHeaders() {
		lower := strings.ToLower(h.GetName())
		if hopByHop[lower] || named[lower] {
			continue
		}
		for _, value := range h.GetValues() {
			header.Add(h.GetName(), value) // one field line per value (SE-9)
		}
	}
	if _, typed := header["Content-Type"]; !typed {
		header["Content-Type"] = nil // no sniffed type: the plugin's headers only
	}
	x.keepReadingBody()
	x.w.WriteHeader(int(init.GetStatus()))
	return ""
}

// checkResponseHead says what makes a response init unusable (SE-5), or "".
func checkResponseHead(init *pc.HTTPResponseInit) string {
	if init.GetStatus() < 200 || init.GetStatus() > 599 {
		return fmt.Sprintf("the response status %d is outside 200..599", init.GetStatus())
	}
	for _, h := range init.GetHeaders() {
		if !httpguts.ValidHeaderFieldName(h.GetName()) {
			return fmt.Sprintf("the response header name %q is not valid", h.GetName())
		}
		for _, value := range h.GetValues() {
			if !httpguts.ValidHeaderFieldValue(value) {
				return fmt.Sprintf("the value %q of response header %q is not valid", value, h.GetName())
			}
		}
	}
	return ""
}
