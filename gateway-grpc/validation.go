package main

import (
	"encoding/binary"
	"math"
	"sort"
	"strconv"

	"gatewaygrpc/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// validate checks a request against the model's metadata and config before it reaches Triton,
// with the messages of gateway/validation.py.
func validate(info *ModelInfo, inputs []Tensor, outputs []string) error {
	given := map[string]bool{}
	for _, t := range inputs {
		if given[t.Name] {
			return badRequest("input '%s' is given more than once", t.Name)
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
	var batched []Tensor // inputs with a batch axis, in request order
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
			batched = append(batched, t)
		}
	}
	for _, t := range batched {
		if first := batched[0]; t.Shape[0] != first.Shape[0] {
			return badRequest("inputs '%s' and '%s' disagree on the batch size: %d vs %d",
				first.Name, t.Name, first.Shape[0], t.Shape[0])
		}
	}
	if len(batched) > 0 && (batched[0].Shape[0] < 1 || batched[0].Shape[0] > info.MaxBatchSize) {
		return badRequest("batch size %d is outside 1..%d (max_batch_size)", batched[0].Shape[0], info.MaxBatchSize)
	}
	if err := checkSharedAxes(info, inputs); err != nil {
		return err
	}
	for _, t := range inputs {
		if err := checkNotEmpty(info, t); err != nil {
			return err
		}
		if err := checkLength(info, t); err != nil {
			return err
		}
		if err := checkRange(info, t); err != nil {
			return err
		}
	}
	return nil
}

// variableAxes: the axes of t that the model declares variable (-1), the batch axis aside.
func variableAxes(info *ModelInfo, t Tensor) []int {
	first := 0
	if info.MaxBatchSize > 0 {
		first = 1
	}
	declared := info.Inputs[t.Name].Shape
	var axes []int
	for i := first; i < len(t.Shape) && i < len(declared); i++ {
		if declared[i] == -1 {
			axes = append(axes, i)
		}
	}
	return axes
}

// checkSharedAxes: the axes of each shared_axis:<name> group have one length (groups in the order
// of their names); a group naming an input the model lacks or an axis beyond its rank is a
// misconfiguration (Internal), as gateway/validation.py's check_shared_axes.
func checkSharedAxes(info *ModelInfo, inputs []Tensor) error {
	shapes := map[string][]int64{}
	for _, t := range inputs {
		shapes[t.Name] = t.Shape
	}
	for _, axisName := range sortedKeys(info.SharedAxes) {
		members := info.SharedAxes[axisName]
		lengths := make([]int64, len(members))
		for i, m := range members {
			shape, ok := shapes[m.Input]
			if !ok || m.Axis >= int64(len(shape)) {
				return status.Errorf(codes.Internal, "model '%s': config parameter %s%s names axis %d of input '%s', which the model does not have",
					info.Name, shared.SharedAxisPrefix, axisName, m.Axis, m.Input)
			}
			lengths[i] = shape[m.Axis]
		}
		for i := 1; i < len(members); i++ {
			if lengths[i] != lengths[0] {
				return badRequest("inputs '%s' and '%s' disagree on the length of axis '%s': %d vs %d (config parameter %s%s)",
					members[0].Input, members[i].Input, axisName, lengths[0], lengths[i], shared.SharedAxisPrefix, axisName)
			}
		}
	}
	return nil
}

// checkNotEmpty: a zero-length variable (-1) axis, batch aside, needs allow_empty:<input>.
func checkNotEmpty(info *ModelInfo, t Tensor) error {
	if info.AllowEmpty[t.Name] {
		return nil
	}
	for _, i := range variableAxes(info, t) {
		if t.Shape[i] == 0 {
			return badRequest("input '%s': shape %s has an empty axis, which the model does not accept (config parameter %s%s)",
				t.Name, shapeText(t.Shape), shared.AllowEmptyPrefix, t.Name)
		}
	}
	return nil
}

// checkLength: a variable (-1) axis, batch aside, is at most max_length:<input> long.
func checkLength(info *ModelInfo, t Tensor) error {
	limit, ok := info.MaxLengths[t.Name]
	if !ok {
		return nil
	}
	for _, i := range variableAxes(info, t) {
		if t.Shape[i] > limit {
			return badRequest("input '%s': length %d exceeds the model's maximum %d (config parameter %s%s)",
				t.Name, t.Shape[i], limit, shared.MaxLengthPrefix, t.Name)
		}
	}
	return nil
}

// checkRange: every value of an integer input with valid_range:<input> lies in it (inclusive).
func checkRange(info *ModelInfo, t Tensor) error {
	bounds, ok := info.ValidRanges[t.Name]
	size := itemSize[t.Datatype]
	if !ok || !integerDatatypes[t.Datatype] {
		return nil
	}
	for offset := 0; offset+size <= len(t.Data); offset += size {
		value, huge := integerAt(t.Datatype, t.Data[offset:offset+size])
		if huge || value < bounds[0] || value > bounds[1] {
			text := strconv.FormatInt(value, 10)
			if huge {
				text = strconv.FormatUint(binary.LittleEndian.Uint64(t.Data[offset:]), 10)
			}
			return badRequest("input '%s': value %s is outside the valid range [%d, %d] (config parameter %s%s)",
				t.Name, text, bounds[0], bounds[1], shared.ValidRangePrefix, t.Name)
		}
	}
	return nil
}

var integerDatatypes = map[string]bool{
	"INT8": true, "INT16": true, "INT32": true, "INT64": true,
	"UINT8": true, "UINT16": true, "UINT32": true, "UINT64": true,
}

// integerAt reads one little-endian integer; huge is true for a UINT64 beyond int64.
func integerAt(datatype string, b []byte) (value int64, huge bool) {
	switch datatype {
	case "INT8":
		return int64(int8(b[0])), false
	case "INT16":
		return int64(int16(binary.LittleEndian.Uint16(b))), false
	case "INT32":
		return int64(int32(binary.LittleEndian.Uint32(b))), false
	case "INT64":
		return int64(binary.LittleEndian.Uint64(b)), false
	case "UINT8":
		return int64(b[0]), false
	case "UINT16":
		return int64(binary.LittleEndian.Uint16(b)), false
	case "UINT32":
		return int64(binary.LittleEndian.Uint32(b)), false
	}
	v := binary.LittleEndian.Uint64(b)
	return int64(v), v > math.MaxInt64
}

// listText writes names as gateway/errors.py's listed does: ['a', 'b'], and beyond
// shared.MaxListed names the first ones then "and N more".
func listText(names []string) string {
	text := "["
	for i, name := range names {
		if i == shared.MaxListed {
			break
		}
		if i > 0 {
			text += ", "
		}
		text += "'" + name + "'"
	}
	text += "]"
	if len(names) > shared.MaxListed {
		text += " and " + strconv.Itoa(len(names)-shared.MaxListed) + " more"
	}
	return text
}
