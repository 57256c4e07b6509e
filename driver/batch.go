package driver

import (
	"context"
	"sync"
)

// GenerateBatch starts reqs together on any engine: in one engine step
// where it can (BatchEngine), else as concurrent requests, refused whole
// when they exceed Info().Sequences(). Outcomes and onTokens are as
// BatchEngine.GenerateBatch has them.
func GenerateBatch(ctx context.Context, eng Engine, reqs []Request, onTokens func(i int, ts []Token)) ([]Outcome, error) {
	if be, ok := eng.(BatchEngine); ok {
		return be.GenerateBatch(ctx, reqs, onTokens)
	}
	if limit := eng.Info().Sequences(); len(reqs) > limit {
		return nil, &BatchLimitError{Engine: eng.Info().Engine, Batch: len(reqs), Limit: limit}
	}
	out := make([]Outcome, len(reqs))
	eachRequest(len(reqs), onTokens, func(i int, each func([]Token)) {
		out[i].Result, out[i].Err = eng.Generate(ctx, reqs[i], each)
	})
	return out, nil
}

// eachRequest runs run(i, request i's token callback) for every i in
// [0, n), each on a goroutine of its own, and waits for them all. The
// callback is nil when onTokens is.
func eachRequest(n int, onTokens func(int, []Token), run func(i int, each func([]Token))) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var each func([]Token)
			if onTokens != nil {
				each = func(ts []Token) { onTokens(i, ts) }
			}
			run(i, each)
		}()
	}
	wg.Wait()
}
