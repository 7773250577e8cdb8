// The per-row prediction cache, as gateway/row_cache.py: one key per row; identical rows of a
// request looked up and computed once; rows another request works on are joined (RowFlights); the
// rest looked up in one MGET, those Redis lacks sent to Triton as one request in request order;
// each computed row stored on its own (TTL and value-size limit per row, never a row holding NaN
// or Infinity); the answer stacked back in request order.
package main

import (
	"context"

	"gatewaygrpc/kserve"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rowAnswer is one row of a model's outputs and whether it was read from Redis.
type rowAnswer struct {
	outputs []Tensor
	hit     bool
}

// cacheReport is what an answer tells about the cache: x-cache (HIT, PARTIAL or MISS) and, for a
// per-row cached model, x-cache-hit-rows.
type cacheReport struct {
	state   string
	hitRows int
	perRow  bool
}

// predictRows answers a batched request row by row (see the file comment), counted per request
// and per row.
func (g *Gateway) predictRows(ctx context.Context, info *ModelInfo, inputs []Tensor, outputs []string,
	parameters map[string]*kserve.InferParameter, ttl int) ([]Tensor, cacheReport, error) {
	keys := rowKeys(info.Name, info.Fingerprint, inputs, outputs)
	first, unique := map[string]int{}, []string{}
	for row, key := range keys {
		if _, seen := first[key]; !seen {
			first[key] = row
			unique = append(unique, key)
		}
	}
	group := flightGroup(parameters) // a row is joined only under equal parameters
	flights, claimed := g.rows.Claim(group, unique)
	if len(claimed) > 0 {
		g.fillRows(info, group, claimed, first, flights, inputs, outputs, parameters, ttl)
	}
	answers, hits := make([][]Tensor, len(keys)), 0
	var err error
	for row := 0; row < len(keys) && err == nil; row++ {
		var found rowAnswer
		found, err = g.rows.Wait(ctx, flights[keys[row]])
		answers[row] = found.outputs
		if found.hit {
			hits++
		}
	}
	if err != nil {
		hits = 0
	}
	report := countRows(info, hits, len(keys), len(claimed) < len(unique))
	if err != nil {
		return nil, report, err
	}
	stacked, err := stackRows(info.Name, answers)
	return stacked, report, err
}

// countRows makes the answer's cache report and counts it: per request (a PARTIAL is a miss),
// per row, and whether the request joined rows of another.
func countRows(info *ModelInfo, hits, rows int, joined bool) cacheReport {
	if joined {
		coalesced.WithLabelValues(info.Name).Inc()
	}
	report := cacheReport{state: "MISS", hitRows: hits, perRow: true}
	counted := cacheMisses
	if hits == rows {
		report.state, counted = "HIT", cacheHits
	} else if hits > 0 {
		report.state = "PARTIAL"
	}
	counted.WithLabelValues(info.Name).Inc()
	cacheRowHits.WithLabelValues(info.Name).Add(float64(hits))
	cacheRowMisses.WithLabelValues(info.Name).Add(float64(rows - hits))
	return report
}

// fillRows settles the claimed rows (first: key -> its first row in the request): from one MGET,
// the rest from one Triton request in request order; stores those, then releases them. A panic
// fails the rows still unsettled and goes on.
func (g *Gateway) fillRows(info *ModelInfo, group string, claimed []string, first map[string]int, flights map[string]*call[rowAnswer],
	inputs []Tensor, outputs []string, parameters map[string]*kserve.InferParameter, ttl int) {
	stored := []<-chan struct{}{}
	defer func() {
		recovered := recover()
		for _, key := range claimed {
			if !settled(flights[key]) {
				g.rows.Settle(flights[key], rowAnswer{}, status.Error(codes.Internal, "internal error"))
			}
		}
		go func() {
			for _, done := range stored {
				<-done
			}
			g.rows.Release(group, claimed, flights)
		}()
		if recovered != nil {
			panic(recovered)
		}
	}()
	missing, picked := []string{}, []int{}
	for i, value := range g.cache.GetMany(claimed) {
		if cached := decodedRow(value, info, outputs); cached != nil {
			g.rows.Settle(flights[claimed[i]], rowAnswer{cached, true}, nil)
		} else {
			missing, picked = append(missing, claimed[i]), append(picked, first[claimed[i]])
		}
	}
	if len(missing) == 0 {
		return
	}
	computed, err := g.inferRows(info, pickRows(inputs, picked), outputs, parameters)
	for i, key := range missing {
		if err != nil {
			g.rows.Settle(flights[key], rowAnswer{}, err)
			continue
		}
		g.rows.Settle(flights[key], rowAnswer{computed[i], false}, nil)
	}
	stored = g.storeRows(info, missing, computed, ttl)
}

// inferRows sends the picked rows to Triton as one request and splits its answer into rows.
func (g *Gateway) inferRows(info *ModelInfo, batch []Tensor, outputs []string,
	parameters map[string]*kserve.InferParameter) ([][]Tensor, error) {
	result, err := g.triton.Infer(context.Background(), info, batch, outputs, parameters)
	if err == nil {
		err = complete(info, outputs, result)
	}
	if err != nil {
		return nil, err
	}
	count := int(batch[0].Shape[0])
	split := make([][]Tensor, count)
	for _, t := range result {
		if len(t.Shape) == 0 || t.Shape[0] != int64(count) {
			return nil, status.Errorf(codes.Internal, "malformed response from Triton: output '%s' has shape %s for %d rows",
				t.Name, shapeText(t.Shape), count)
		}
		for row, part := range rows(t) {
			split[row] = append(split[row], part)
		}
	}
	return split, nil
}

// storeRows queues the finite rows for the write-behind pipeline (computed is nil after a failed
// inference: nothing to store); rows holding NaN or Infinity are counted once per answer.
func (g *Gateway) storeRows(info *ModelInfo, keys []string, computed [][]Tensor, ttl int) []<-chan struct{} {
	stored, bypassed := []<-chan struct{}{}, false
	for i := 0; i < len(computed); i++ {
		if !allFinite(computed[i]) {
			bypassed = true
			continue
		}
		stored = append(stored, g.cache.Store(keys[i], encodeOutputs(computed[i]), ttl))
	}
	if bypassed {
		cacheBypassed.WithLabelValues(info.Name, "non_finite").Inc()
	}
	return stored
}

// decodedRow is a stored row holding exactly the expected outputs; nil when absent or not a value
// a gateway wrote (counted as a decode error).
func decodedRow(value []byte, info *ModelInfo, requested []string) []Tensor {
	if value == nil {
		return nil
	}
	expected := uniqueSorted(requested)
	if len(requested) == 0 {
		expected = sortedKeys(info.Outputs)
	}
	row, err := decodeOutputs(value)
	names := make([]string, len(row))
	for i, t := range row {
		names[i] = t.Name
	}
	if err != nil || listText(uniqueSorted(names)) != listText(expected) || len(names) != len(expected) {
		cacheErrors.WithLabelValues("decode").Inc()
		return nil
	}
	return row
}

func settled(flight *call[rowAnswer]) bool {
	select {
	case <-flight.done:
		return true
	default:
		return false
	}
}
