package gobpe

import (
	"container/heap"
	"sync"
)

// mergeRule is the result of merging one pair of token ids.
type mergeRule struct {
	rank int32
	id   int32
}

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// bpe is a byte-level BPE model: words are raw bytes, each byte starts as
// its own token, and merges apply lowest rank first.
type bpe struct {
	merges       map[uint64]mergeRule
	byteID       [256]int32       // token of each single byte, -1 if none
	wholeWord    map[string]int32 // raw-byte token text to id, for ignore_merges
	ignoreMerges bool
	unkID        int32 // -1 when the model has no unknown token
	fuseUnk      bool

	cacheMu sync.RWMutex
	cache   map[string][]int32
}

// cacheCapacity bounds the word cache; like Hugging Face's, it stops taking
// new words when full and only caches words shorter than cacheMaxWord.
const (
	cacheCapacity = 10000
	cacheMaxWord  = 256
)

// appendWord appends the tokens of one pre-tokenized word (raw bytes).
func (m *bpe) appendWord(dst []int32, word string) []int32 {
	if m.ignoreMerges {
		if id, ok := m.wholeWord[word]; ok {
			return append(dst, id)
		}
	}
	if len(word) < cacheMaxWord {
		m.cacheMu.RLock()
		ids, ok := m.cache[word]
		m.cacheMu.RUnlock()
		if ok {
			return append(dst, ids...)
		}
	}
	start := len(dst)
	dst = m.mergeWord(dst, word)
	if len(word) < cacheMaxWord {
		m.cacheMu.Lock()
		if len(m.cache) < cacheCapacity {
			m.cache[word] = append([]int32(nil), dst[start:]...)
		}
		m.cacheMu.Unlock()
	}
	return dst
}

// initialSymbols appends one token per byte of word, mapping bytes the
// vocabulary lacks to the unknown token or dropping them, as Hugging Face
// does.
func (m *bpe) initialSymbols(dst []int32, word string) []int32 {
	lastUnk := false
	for i := 0; i < len(word); i++ {
		id := m.byteID[word[i]]
		if id >= 0 {
			dst = append(dst, id)
			lastUnk = false
			continue
		}
		if m.unkID < 0 {
			continue
		}
		if m.fuseUnk && lastUnk {
			continue
		}
		dst = append(dst, m.unkID)
		lastUnk = true
	}
	return dst
}

// smallWord is the length up to which a quadratic scan beats the heap.
const smallWord = 64

func (m *bpe) mergeWord(dst []int32, word string) []int32 {
	start := len(dst)
	dst = m.initialSymbols(dst, word)
	syms := dst[start:]
	if len(syms) < 2 {
		return dst
	}
	if len(syms) > smallWord {
		n := m.mergeHeap(syms)
		return dst[:start+n]
	}
	n := m.mergeScan(syms)
	return dst[:start+n]
}

const noRank = int32(1<<31 - 1)

// mergeScan merges in place, choosing the lowest-rank pair (leftmost on
// ties) each round; it returns the number of symbols left. It gives the
// same result as Hugging Face's priority queue.
func (m *bpe) mergeScan(syms []int32) int {
	var ranksBuf [smallWord]int32
	var idsBuf [smallWord]int32
	n := len(syms)
	ranks := ranksBuf[:n-1]
	newIDs := idsBuf[:n-1]
	for i := 0; i < n-1; i++ {
		ranks[i], newIDs[i] = m.rule(syms[i], syms[i+1])
	}
	for n > 1 {
		best := -1
		bestRank := noRank
		for i, r := range ranks[:n-1] {
			if r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		syms[best] = newIDs[best]
		copy(syms[best+1:], syms[best+2:n])
		copy(ranks[best:], ranks[best+1:n-1])
		copy(newIDs[best:], newIDs[best+1:n-1])
		n--
		if best > 0 {
			ranks[best-1], newIDs[best-1] = m.rule(syms[best-1], syms[best])
		}
		if best < n-1 {
			ranks[best], newIDs[best] = m.rule(syms[best], syms[best+1])
		}
	}
	return n
}

func (m *bpe) rule(left, right int32) (rank, id int32) {
	if r, ok := m.merges[pairKey(left, right)]; ok {
		return r.rank, r.id
	}
	return noRank, -1
}

// mergeHeap is Hugging Face's algorithm for long words: a priority queue of
// candidate merges over a linked list of symbols, stale entries skipped.
func (m *bpe) mergeHeap(syms []int32) int {
	n := len(syms)
	prev := make([]int32, n)
	next := make([]int32, n)
	alive := make([]bool, n)
	for i := range syms {
		prev[i], next[i], alive[i] = int32(i-1), int32(i+1), true
	}
	next[n-1] = -1
	q := make(mergeQueue, 0, n)
	for i := 0; i < n-1; i++ {
		if r, ok := m.merges[pairKey(syms[i], syms[i+1])]; ok {
			q = append(q, candidate{pos: int32(i), rank: r.rank, id: r.id})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(candidate)
		p := top.pos
		if !alive[p] || next[p] < 0 {
			continue
		}
		right := next[p]
		r, ok := m.merges[pairKey(syms[p], syms[right])]
		if !ok || r.id != top.id {
			continue
		}
		syms[p] = top.id
		alive[right] = false
		next[p] = next[right]
		if next[p] >= 0 {
			prev[next[p]] = p
		}
		if prev[p] >= 0 {
			if r, ok := m.merges[pairKey(syms[prev[p]], syms[p])]; ok {
				heap.Push(&q, candidate{pos: prev[p], rank: r.rank, id: r.id})
			}
		}
		if next[p] >= 0 {
			if r, ok := m.merges[pairKey(syms[p], syms[next[p]])]; ok {
				heap.Push(&q, candidate{pos: p, rank: r.rank, id: r.id})
			}
		}
	}
	out := 0
	for i := 0; i >= 0 && i < n; i = int(next[i]) {
		syms[out] = syms[i]
		out++
	}
	return out
}

type candidate struct {
	pos, rank, id int32
}

// mergeQueue orders candidates by rank, then position.
type mergeQueue []candidate

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(candidate)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
