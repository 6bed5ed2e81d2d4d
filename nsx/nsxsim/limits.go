package nsxsim

import (
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/time/rate"
)

// limiter enforces NSX Manager's API service limits: a request rate and a
// number of concurrent requests per client (429, error_code 102), and a
// number of concurrent requests overall (503).
type limiter struct {
	rate, perClient, global int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	active  map[string]int
	total   int
}

func newLimiter(ratePerSec, perClient, global int) *limiter {
	return &limiter{rate: ratePerSec, perClient: perClient, global: global,
		buckets: map[string]*rate.Limiter{}, active: map[string]int{}}
}

// acquire admits a request of client or says why not; release must be called
// when an admitted request ends.
func (l *limiter) acquire(client string) (release func(), _ *apiErr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.global > 0 && l.total >= l.global {
		return nil, &apiErr{http.StatusServiceUnavailable, CodeServerBusy,
			fmt.Sprintf("The server is busy: exceeded the overall limit of %d concurrent requests. Retry later.", l.global)}
	}
	if l.perClient > 0 && l.active[client] >= l.perClient {
		return nil, &apiErr{http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("Client '%s' exceeded concurrent request limit of %d.", client, l.perClient)}
	}
	if l.rate > 0 {
		b, ok := l.buckets[client]
		if !ok {
			b = rate.NewLimiter(rate.Limit(l.rate), l.rate)
			l.buckets[client] = b
		}
		if !b.Allow() {
			return nil, &apiErr{http.StatusTooManyRequests, CodeRateLimited,
				fmt.Sprintf("Client '%s' exceeded request rate of %d per second.", client, l.rate)}
		}
	}
	l.total++
	l.active[client]++
	return func() {
		l.mu.Lock()
		l.total--
		l.active[client]--
		l.mu.Unlock()
	}, nil
}
