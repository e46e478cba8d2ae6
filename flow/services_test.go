package flow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

func TestServicesStopAllAtAPanicAndReportIt(t *testing.T) {
	svc := flow.NewServices(context.Background())
	stopped := make(chan struct{})
	svc.Go("inventory", func(ctx context.Context) { <-ctx.Done(); close(stopped) })
	svc.Go("email", func(context.Context) { var m map[string]int; m["poison"]++ })
	done := make(chan error, 1)
	go func() { done <- svc.Wait() }()
	select {
	case err := <-done:
		if flow.KindOf(err) != flow.Internal || !strings.Contains(err.Error(), "email panicked: assignment to entry in nil map") {
			t.Errorf("Wait returned %v, want email's panic as an internal error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a panic did not stop the other services")
	}
	<-stopped
}

func TestServicesStopWithTheirContextWithoutError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	svc := flow.NewServices(ctx)
	svc.Go("inventory", func(ctx context.Context) { <-ctx.Done() })
	cancel()
	if err := svc.Wait(); err != nil {
		t.Errorf("Wait returned %v after a plain stop", err)
	}
}
