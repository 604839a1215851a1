package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
)

// baselineUDP measures a plain Go UDP echo on loopback: one server
// goroutine answers each datagram with itself; c clients, each with its
// own socket, send one datagram and wait for it back.
func baselineUDP(log io.Writer, c int, d time.Duration) (Row, error) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return Row{}, fmt.Errorf("bench: udp echo: %w", err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDP(buf[:n], from)
		}
	}()
	payload := bytes.Repeat([]byte{'x'}, 32)
	rate, lat, failed, err := loop(log, c, d, func(int) (func() error, func(), error) {
		conn, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return nil, nil, fmt.Errorf("bench: udp echo: %w", err)
		}
		buf := make([]byte, 1500)
		return func() error {
			if _, err := conn.Write(payload); err != nil {
				return err
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			_, err := conn.Read(buf)
			return err
		}, func() { conn.Close() }, nil
	})
	if err != nil {
		return Row{}, err
	}
	return Row{
		Scenario: "baseline-udp", Title: "plain Go UDP echo", Devices: c,
		Value: rate, Unit: "round trips/s", P50: lat.percentile(50), P99: lat.percentile(99),
		Failed: failed, Note: fmt.Sprintf("%d concurrent sockets, 32-byte datagrams, %d timeouts", c, failed),
	}, nil
}

// socketRounds is how many requests a go-coap baseline client sends from
// one socket.
const socketRounds = 50

// baselineCoAP measures a go-coap v3 UDP server that answers every
// confirmable GET with a 2.05 Content piggybacked on the ACK (RFC 7252
// §5.2.1), from c go-coap clients, each its own socket.
func baselineCoAP(log io.Writer, c int, d time.Duration) (Row, error) {
	l, err := coapnet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		return Row{}, fmt.Errorf("bench: go-coap: %w", err)
	}
	r := mux.NewRouter()
	if err := r.Handle("/3303/0/5700", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("21.5")))
	})); err != nil {
		return Row{}, fmt.Errorf("bench: go-coap: %w", err)
	}
	s := udp.NewServer(options.WithMux(r))
	go func() { _ = s.Serve(l) }()
	defer func() { s.Stop(); l.Close() }()
	addr := l.LocalAddr().String()
	rate, lat, failed, err := loop(log, c, d, func(int) (func() error, func(), error) {
		cc, err := udp.Dial(addr)
		if err != nil {
			return nil, nil, fmt.Errorf("bench: go-coap: %w", err)
		}
		n := 0
		return func() error {
				// go-coap keeps every answer to a peer for EXCHANGE_LIFETIME
				// (RFC 7252 §4.8.2, 247 s) and scans them on each datagram
				// from it (go-coap issue #586), so one socket's thousands of
				// requests would measure that scan. A fleet's device sends few
				// requests: move to a new socket every 50, as the server's
				// benchmarks do.
				if n++; n%socketRounds == 0 && cc != nil {
					cc.Close()
					cc = nil
				}
				if cc == nil {
					var err error
					if cc, err = udp.Dial(addr); err != nil {
						return err
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				resp, err := cc.Get(ctx, "/3303/0/5700")
				if err != nil {
					return err
				}
				defer cc.ReleaseMessage(resp)
				if resp.Code() != codes.Content {
					return errors.New(resp.Code().String())
				}
				if b := resp.Body(); b != nil {
					_, _ = io.Copy(io.Discard, b)
				}
				return nil
			}, func() {
				if cc != nil {
					cc.Close()
				}
			}, nil
	})
	if err != nil {
		return Row{}, err
	}
	return Row{
		Scenario: "baseline-coap", Title: "raw go-coap v3 UDP server, confirmable GET", Devices: c,
		Value: rate, Unit: "requests/s", P50: lat.percentile(50), P99: lat.percentile(99),
		Failed: failed, Note: fmt.Sprintf("%d concurrent clients, a new socket every %d requests, %d failed", c, socketRounds, failed),
	}, nil
}
