package template

import (
	"errors"
	"strconv"
	"strings"
	"text/template"
)

// Bounds on what one template function call or one render may produce.
// Counts such as repeat's often come from lead data, so the functions that
// allocate in proportion to an argument are bounded instead of trusting it.
const (
	// MaxItems is the most elements until, untilStep, seq and chunk make.
	MaxItems = 10_000
	// MaxFuncOutput is the most bytes repeat, indent, nindent, randBytes
	// and the rand* string functions return.
	MaxFuncOutput = 1 << 20
	// MaxOutput is the most bytes one Render writes.
	MaxOutput = 8 << 20
)

// errTooLarge is the render error of output beyond MaxOutput.
var errTooLarge = errors.New("template output exceeds " + strconv.Itoa(MaxOutput>>20) + " MiB")

// limitedWriter fails a render that writes more than MaxOutput bytes.
type limitedWriter struct {
	b *strings.Builder
}

func (w limitedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > MaxOutput {
		return 0, errTooLarge
	}
	return w.b.Write(p)
}

// stepCount is how many elements sprig's untilStep(start, stop, step) makes.
func stepCount(start, stop, step int) uint64 {
	switch {
	case step > 0 && start < stop:
		return (uint64(stop)-uint64(start)-1)/uint64(step) + 1
	case step < 0 && start > stop:
		return (uint64(start)-uint64(stop)-1)/(uint64(-(step+1))+1) + 1
	}
	return 0
}

// seqCount is how many numbers sprig's seq makes for params.
func seqCount(params []int) uint64 {
	switch len(params) {
	case 1:
		if end := params[0]; end < 1 {
			return stepCount(1, end-1, -1)
		}
		return stepCount(1, params[0]+1, 1)
	case 2:
		start, end := params[0], params[1]
		if end < start {
			return stepCount(start, end-1, -1)
		}
		return stepCount(start, end+1, 1)
	case 3:
		start, step, end := params[0], params[1], params[2]
		if end < start {
			if step > 0 {
				return 0
			}
			return stepCount(start, end-1, step)
		}
		return stepCount(start, end+1, step)
	}
	return 0
}

func tooMany(fn string) error {
	return ferr(fn + ": more than " + strconv.Itoa(MaxItems) + " items")
}

func tooLong(fn string) error {
	return ferr(fn + ": result longer than " + strconv.Itoa(MaxFuncOutput) + " bytes")
}

// boundFuncs replaces sprig's functions whose allocation is proportional to
// an argument with bounded versions that fail beyond MaxItems or
// MaxFuncOutput. The bounded versions call sprig's own once the size is
// known to be within bounds, so results are unchanged.
func boundFuncs(fm template.FuncMap) {
	if orig, ok := fm["until"].(func(int) []int); ok {
		fm["until"] = func(count int) ([]int, error) {
			step := 1
			if count < 0 {
				step = -1
			}
			if stepCount(0, count, step) > MaxItems {
				return nil, tooMany("until")
			}
			return orig(count), nil
		}
	}
	if orig, ok := fm["untilStep"].(func(int, int, int) []int); ok {
		fm["untilStep"] = func(start, stop, step int) ([]int, error) {
			if stepCount(start, stop, step) > MaxItems {
				return nil, tooMany("untilStep")
			}
			return orig(start, stop, step), nil
		}
	}
	if orig, ok := fm["seq"].(func(...int) string); ok {
		fm["seq"] = func(params ...int) (string, error) {
			if seqCount(params) > MaxItems {
				return "", tooMany("seq")
			}
			return orig(params...), nil
		}
	}
	if orig, ok := fm["chunk"].(func(int, any) [][]any); ok {
		fm["chunk"] = func(size int, list any) ([][]any, error) {
			if size < 1 {
				return nil, ferr("chunk: size must be at least 1")
			}
			return orig(size, list), nil
		}
	}
	fm["repeat"] = func(count int, str string) (string, error) {
		if count < 0 {
			return "", ferr("repeat: negative count")
		}
		if count > 0 && len(str) > MaxFuncOutput/count {
			return "", tooLong("repeat")
		}
		return strings.Repeat(str, count), nil
	}
	for _, name := range [...]string{"indent", "nindent"} {
		orig, ok := fm[name].(func(int, string) string)
		if !ok {
			continue
		}
		fm[name] = func(spaces int, v string) (string, error) {
			if spaces < 0 {
				return "", ferr(name + ": negative count")
			}
			lines := strings.Count(v, "\n") + 1
			if spaces > 0 && lines > MaxFuncOutput/spaces || spaces*lines > MaxFuncOutput-len(v) {
				return "", tooLong(name)
			}
			return orig(spaces, v), nil
		}
	}
	for _, name := range [...]string{"randAlphaNum", "randAlpha", "randAscii", "randNumeric"} {
		orig, ok := fm[name].(func(int) string)
		if !ok {
			continue
		}
		fm[name] = func(count int) (string, error) {
			if count < 0 || count > MaxFuncOutput {
				return "", tooLong(name)
			}
			return orig(count), nil
		}
	}
	if orig, ok := fm["randBytes"].(func(int) (string, error)); ok {
		fm["randBytes"] = func(count int) (string, error) {
			if count < 0 || count > MaxFuncOutput*3/4 {
				return "", tooLong("randBytes")
			}
			return orig(count)
		}
	}
}
