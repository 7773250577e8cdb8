package main

import (
	"sort"
)

// validate checks a request against the model's metadata before it reaches Triton, with the
// messages of gateway/validation.py.
func validate(info *ModelInfo, inputs []Tensor, outputs []string) error {
	given := map[string]bool{}
	for _, t := range inputs {
		if given[t.Name] {
			return badRequest("an input is given more than once")
		}
		given[t.Name] = true
	}
	var unknown, missing []string
	for name := range given {
		if _, ok := info.Inputs[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	for name := range info.Inputs {
		if !given[name] {
			missing = append(missing, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badRequest("model '%s' has no input %s; inputs: %s", info.Name, listText(unknown), listText(sortedKeys(info.Inputs)))
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return badRequest("model '%s' needs input %s", info.Name, listText(missing))
	}
	for _, name := range outputs {
		if _, ok := info.Outputs[name]; !ok {
			return badRequest("model '%s' has no output '%s'; outputs: %s", info.Name, name, listText(sortedKeys(info.Outputs)))
		}
	}
	var batches []int64
	for _, t := range inputs {
		want := info.Inputs[t.Name]
		if t.Datatype != want.Datatype {
			return badRequest("input '%s': datatype %s, model expects %s", t.Name, t.Datatype, want.Datatype)
		}
		fits := len(t.Shape) == len(want.Shape)
		for i := 0; fits && i < len(want.Shape); i++ {
			fits = want.Shape[i] == -1 || want.Shape[i] == t.Shape[i]
		}
		if !fits {
			hint := ""
			if info.MaxBatchSize > 0 {
				hint = " (first dimension = batch)"
			}
			return badRequest("input '%s': shape %s, model expects %s%s", t.Name, shapeText(t.Shape), shapeText(want.Shape), hint)
		}
		if info.MaxBatchSize > 0 && len(t.Shape) > 0 {
			batches = append(batches, t.Shape[0])
		}
	}
	if distinct := uniqueSorted(batches); len(distinct) > 1 {
		return badRequest("inputs disagree on the batch size: %s", shapeText(distinct))
	} else if len(distinct) == 1 && (distinct[0] < 1 || distinct[0] > info.MaxBatchSize) {
		return badRequest("batch size %d is outside 1..%d (max_batch_size)", distinct[0], info.MaxBatchSize)
	}
	return nil
}

// listText writes names as Python writes a list of strings: ['a', 'b'].
func listText(names []string) string {
	text := "["
	for i, name := range names {
		if i > 0 {
			text += ", "
		}
		text += "'" + name + "'"
	}
	return text + "]"
}
