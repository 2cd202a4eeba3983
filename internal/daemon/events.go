package daemon

import (
	"context"
	"sync"

	"github.com/cutover/cutover/internal/deploy"
)

// broker fans deployment events out to API subscribers (the SSE stream).
// Publishing never blocks the controller: a subscriber whose buffer is full
// misses events and is told so by the gap in their times, which is the
// right trade for a progress display.
type broker struct {
	mu   sync.Mutex
	subs map[chan deploy.Event]string // channel -> service filter ("" = all)
}

func newBroker() *broker { return &broker{subs: make(map[chan deploy.Event]string)} }

func (b *broker) publish(ev deploy.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, svc := range b.subs {
		if svc != "" && svc != ev.Service {
			continue
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

// subscribe returns a channel of events for service ("" for all) that is
// closed when ctx is done.
func (b *broker) subscribe(ctx context.Context, service string) <-chan deploy.Event {
	ch := make(chan deploy.Event, 256)
	b.mu.Lock()
	b.subs[ch] = service
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
