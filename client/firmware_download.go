package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
)

// download fetches the package at uri (pull delivery, Core 1.1 E.6). Its
// errors are *FirmwareErrors with the Update Result they stand for: 7 for
// a URI that is malformed or names nothing, 9 for a scheme the object
// does not announce in Firmware Update Protocol Support, 2 for a package
// over MaxSize, 4 for a transfer that breaks off.
func (f *Firmware) download(ctx context.Context, uri string) ([]byte, error) {
	u, err := url.Parse(uri)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, &FirmwareError{Result: ResultInvalidURI, Msg: fmt.Sprintf("package URI %q is not an absolute URI with a host", uri)}
	}
	proto, known := map[string]int64{"coap": ProtocolCoAP, "coaps": ProtocolCoAPS, "http": ProtocolHTTP, "https": ProtocolHTTPS}[u.Scheme]
	if !known || !slices.Contains(f.cfg.Protocols, proto) || proto == ProtocolCoAPS {
		return nil, &FirmwareError{Result: ResultUnsupportedProto, Msg: fmt.Sprintf("package URI scheme %q is not supported", u.Scheme)}
	}
	if proto == ProtocolCoAP {
		return f.downloadCoAP(ctx, u)
	}
	return f.downloadHTTP(ctx, u)
}

func (f *Firmware) downloadHTTP(ctx context.Context, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &FirmwareError{Result: ResultInvalidURI, Msg: err.Error()}
	}
	resp, err := f.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, transferError(u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, &FirmwareError{Result: ResultInvalidURI, Msg: fmt.Sprintf("GET %s: %s", u, resp.Status)}
	default:
		return nil, &FirmwareError{Result: ResultConnectionLost, Msg: fmt.Sprintf("GET %s: %s", u, resp.Status)}
	}
	if resp.ContentLength > int64(f.cfg.MaxSize) {
		return nil, f.tooBig(resp.ContentLength)
	}
	pkg, err := io.ReadAll(io.LimitReader(resp.Body, int64(f.cfg.MaxSize)+1))
	if err != nil {
		return nil, transferError(u, err)
	}
	if len(pkg) > f.cfg.MaxSize {
		return nil, f.tooBig(int64(len(pkg)))
	}
	return pkg, nil
}

// downloadCoAP GETs the package with go-coap's client, which follows
// Block2 (RFC 7959) to the end.
func (f *Firmware) downloadCoAP(ctx context.Context, u *url.URL) ([]byte, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5683")
	}
	cc, err := udp.Dial(host,
		options.WithContext(ctx),
		options.WithMaxMessageSize(uint32(min(f.cfg.MaxSize, 1<<30))+1),
	)
	if err != nil {
		return nil, transferError(u, err)
	}
	defer cc.Close()
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	resp, err := cc.Get(ctx, path)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, io.ErrShortBuffer) {
			return nil, f.tooBig(int64(f.cfg.MaxSize) + 1)
		}
		return nil, transferError(u, err)
	}
	defer cc.ReleaseMessage(resp)
	switch c := resp.Code(); {
	case c == codes.Content:
	case c == codes.NotFound || c == codes.BadRequest || c == codes.Forbidden || c == codes.Unauthorized || c == codes.MethodNotAllowed:
		return nil, &FirmwareError{Result: ResultInvalidURI, Msg: fmt.Sprintf("GET %s: %v", u, c)}
	default:
		return nil, &FirmwareError{Result: ResultConnectionLost, Msg: fmt.Sprintf("GET %s: %v", u, c)}
	}
	pkg, err := resp.ReadBody()
	if err != nil {
		return nil, transferError(u, err)
	}
	if len(pkg) > f.cfg.MaxSize {
		return nil, f.tooBig(int64(len(pkg)))
	}
	return pkg, nil
}

func (f *Firmware) tooBig(n int64) error {
	return &FirmwareError{Result: ResultNoFlash, Msg: fmt.Sprintf("package of %d bytes, room for %d", n, f.cfg.MaxSize)}
}

// transferError maps a failed transfer to its result: a host that does
// not resolve is an invalid URI, anything else a lost connection.
func transferError(u *url.URL, err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return &FirmwareError{Result: ResultInvalidURI, Msg: fmt.Sprintf("GET %s: %v", u, err)}
	}
	return &FirmwareError{Result: ResultConnectionLost, Msg: fmt.Sprintf("GET %s: %v", u, err)}
}
