package console_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/console"
)

// chromium returns the path of Debian's chromium, installing the package
// when it is missing (as root, with apt-get). The test skips, loudly, only
// when that fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Log("chromium is missing: apt-get update && apt-get install -y chromium")
	out, err := exec.Command("sh", "-c", "apt-get update && apt-get install -y chromium").CombinedOutput()
	if p, lerr := exec.LookPath("chromium"); err == nil && lerr == nil {
		return p
	}
	t.Skipf("SKIPPED: no headless Chromium for the console's end-to-end test: apt-get install chromium failed: %v\n%s", err, out)
	return ""
}

// TestConsoleBrowser drives the console in a real headless Chromium: find
// a stream and open it, follow the live log while events are appended,
// replay a parked event and see the handler receive it. With
// MEOWMX_SCREENSHOTS=1 it writes screenshots of the main pages to docs/.
func TestConsoleBrowser(t *testing.T) {
	t.Parallel()
	path := chromium(t)
	s := newStore(t)
	for _, id := range []string{"blanco", "tom", "felix", "garfield"} {
		appendEv(t, s, "cat", id, "Born", `{"name":"`+id+`","colour":"white"}`)
	}
	appendEv(t, s, "cat", "felix", "Fed", `{"food":"tuna","grams":85}`)
	appendEv(t, s, "cat", "felix", "Napped", `{"minutes":40,"where":"the sofa"}`)
	for i := range 12 {
		appendEv(t, s, "order", "order-"+string(rune('a'+i)), "Placed", `{"total":12.5}`)
	}

	// A subscription whose handler fails on Poisoned events until healed.
	var healed atomic.Bool
	received := make(chan string, 16)
	runSub(t, s, "mailer", func(_ context.Context, _ *sql.Tx, ev *meowmx.RecordedEvent) error {
		if ev.Type == "Poisoned" {
			if !healed.Load() {
				return errors.New("smtp: 451 try again later <mx.example>")
			}
			received <- ev.StreamID.ID
		}
		return nil
	})
	runSub(t, s, "projector", nil)

	h, err := console.New(s, console.Config{AllowWrites: true, Name: "meowmx.db"})
	require.NoError(t, err)
	srv := newServer(t, h)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.Flag("disable-gpu", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute) // a guard against a hung browser, not an assertion
	defer cancel()

	shots := os.Getenv("MEOWMX_SCREENSHOTS") == "1"
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if !shots {
				return nil
			}
			if _, err := chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`)(ctx, t); err != nil {
				return err
			}
			b, err := chromedp.CaptureScreenshot()(ctx, t) // the viewport: a full-page capture draws the sticky header mid-page
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join("..", "..", "docs", "console-"+name+".png"), b, 0o644)
		})
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err)
		return s
	}

	// Find a stream and open it.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv+"/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/streams?type=cat"]`)),
		shot("categories"),
		chromedp.Click(chromedp.CSS(`a[href="/streams?type=cat"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=prefix]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=prefix]`), "fe"),
		chromedp.Submit(chromedp.CSS(`input[name=prefix]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.id[href="/stream?id=felix"]`)),
		chromedp.Click(chromedp.CSS(`a.id[href="/stream?id=felix"]`)),
		chromedp.WaitVisible(chromedp.CSS(`article#v2`)),
		shot("stream"),
	))
	require.Equal(t, "felix", text(`main h1`))
	events := text(`.events`)
	require.Contains(t, events, `"food": "tuna"`)
	require.Contains(t, events, "Napped")

	// Keep the live log open while events are appended.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv+"/log#live"),
		chromedp.WaitVisible(chromedp.CSS(`#live:checked`)),
		chromedp.WaitReady(chromedp.CSS(`#live-state`)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.getElementById("live-state").textContent === "following new events"`)(ctx, t)
			return err
		}),
	))
	appendEv(t, s, "cat", "tom", "Purred", `{"volume":"<loud>"}`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#log-rows tr.fresh`)),
		shot("log"),
	))
	row := text(`#log-rows tr:first-child`)
	require.Contains(t, row, "Purred")
	require.Contains(t, row, "<loud>", "shown as text")

	// Park an event, replay it from the console, see the handler get it.
	appendEv(t, s, "cat", "blanco", "Poisoned", `{}`)
	for {
		parked, err := s.ParkedEvents(ctx, "mailer")
		require.NoError(t, err)
		if len(parked) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the event was never parked")
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv+"/subscriptions"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/subscription?name=mailer"]`)),
		shot("subscriptions"),
		chromedp.Click(chromedp.CSS(`a[href="/subscription?name=mailer"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#parked td.error`)),
		shot("subscription"),
	))
	require.Contains(t, text(`#parked td.error`), "smtp: 451 try again later <mx.example>")
	healed.Store(true)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#replay`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
		shot("confirm"),
		chromedp.Click(chromedp.CSS(`#confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)),
	))
	done := text(`p.done`)
	require.True(t, strings.HasPrefix(done, "1 parked event"), done)
	select {
	case id := <-received:
		require.Equal(t, "blanco", id)
	case <-ctx.Done():
		t.Fatal("the handler never received the replayed event")
	}
}
