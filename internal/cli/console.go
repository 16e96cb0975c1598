package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx/internal/console"
)

const consoleLong = `console serves a web console: categories and streams, a stream's events,
the global log (with a live mode that shows events as they commit), and
subscriptions with their lag, owners, partitions and parked events.

It listens on loopback unless told otherwise. On any other address it needs a
token, from --token or MEOWMX_CONSOLE_TOKEN ("random" makes one up), and
refuses to start without one. It only reads unless started with
--allow-writes, which enables replaying parked events, resetting and deleting
subscriptions, each behind a confirmation page.`

func (a *app) consoleCmd() *cobra.Command {
	var (
		listen      string
		allowWrites bool
		token       string
	)
	c := &cobra.Command{
		Use:   "console",
		Short: "Serve a web console to browse the store and operate subscriptions",
		Long:  consoleLong,
		Example: `  meowmx console
  meowmx console --listen 0.0.0.0:8080 --token random --allow-writes`,
		Args:   cobra.NoArgs,
		PreRun: func(*cobra.Command, []string) { a.long = true },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" && a.env.Getenv != nil {
				token = a.env.Getenv("MEOWMX_CONSOLE_TOKEN")
			}
			if token == "random" {
				b := make([]byte, 16)
				_, _ = rand.Read(b)
				token = hex.EncodeToString(b)
			}
			loopback, err := isLoopback(listen)
			if err != nil {
				return usagef("--listen: %v", err)
			}
			if !loopback && token == "" {
				return usagef("--listen %s is not a loopback address: give a --token (or MEOWMX_CONSOLE_TOKEN; \"random\" makes one up)", listen)
			}
			ctx := cmd.Context()
			b, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer b.close()
			s, ok := b.store.(console.Store)
			if !ok {
				return errors.New("the store cannot be browsed")
			}
			h, err := console.New(s, console.Config{AllowWrites: allowWrites, Token: token, Name: redact(a.database())})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			addr := "http://" + ln.Addr().String() + "/"
			if token != "" {
				addr += "?token=" + url.QueryEscape(token)
			}
			mode := "read only"
			if allowWrites {
				mode = "writes allowed"
			}
			fmt.Fprintf(a.out(), "meowmx console (%s) on %s\n", mode, addr)
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return ctx.Err()
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (host:port)")
	c.Flags().BoolVar(&allowWrites, "allow-writes", false, "enable actions: replay parked events, reset and delete subscriptions")
	c.Flags().StringVar(&token, "token", "", `token required of every request (default $MEOWMX_CONSOLE_TOKEN; "random" makes one up)`)
	return a.withMetrics(c)
}

// isLoopback tells whether a listen address binds to loopback only: a
// loopback IP or "localhost". An empty host binds every interface.
func isLoopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// redact drops the password from a database URL, for display.
func redact(db string) string {
	u, err := url.Parse(db)
	if err != nil || u.User == nil {
		return db
	}
	return u.Redacted()
}
