package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/meowmx/meowmx"
)

// serveMetrics serves metrics for Prometheus to scrape, at
// http://addr/metrics, until ctx ends or stop is called: the store's
// (through the OpenTelemetry Prometheus exporter, from the returned
// MeterProvider) and the process's (Go runtime, CPU, memory). It listens
// before it returns, so a bad or busy address is its error; bound is the
// address it listens on (addr with port 0 picks a free one). stop shuts
// the server down and waits for it.
func serveMetrics(ctx context.Context, addr string) (mp metric.MeterProvider, bound net.Addr, stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("metrics: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = provider.Shutdown(context.WithoutCancel(ctx))
		return nil, nil, nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return // the listener failed: nothing left to serve
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		<-served
		_ = provider.Shutdown(sctx)
	}()
	stop = func() {
		cancel()
		<-shut
	}
	return provider, ln.Addr(), stop, nil
}

// withMetrics gives c a --metrics ADDR flag: when it is set, the command
// serves the metrics of the store it opens (see serveMetrics) while it
// runs. Call it on a command whose RunE opens its store through app.open.
func (a *app) withMetrics(c *cobra.Command) *cobra.Command {
	var addr string
	c.Flags().StringVar(&addr, "metrics", "", "serve Prometheus metrics on this address (host:port) at /metrics, e.g. :9464")
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if addr == "" {
			return run(cmd, args)
		}
		mp, bound, stop, err := serveMetrics(cmd.Context(), addr)
		if err != nil {
			return err
		}
		defer stop()
		a.meterProvider = mp
		fmt.Fprintf(a.env.Stderr, "metrics: http://%s/metrics\n", bound)
		return run(cmd, args)
	}
	return c
}

// storeConfig is the configuration of the stores the commands open: they
// report metrics to the provider that --metrics serves, when set.
func (a *app) storeConfig() *meowmx.Config {
	return &meowmx.Config{Logger: a.storeLogger(), MeterProvider: a.meterProvider}
}
