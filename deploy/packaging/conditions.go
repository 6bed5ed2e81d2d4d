package packaging

import (
	"slices"
	"strconv"
	"strings"
)

// syntax is how one template language spells conditions and references.
type syntax struct {
	dim     func(name string) string // the expression of a dimension's value
	eq      func(x, val string) string
	in      func(x string, vals []string) string
	and, or func(terms []string) string
}

var helmSyntax = syntax{
	dim: func(name string) string { return "$" + name },
	eq:  func(x, val string) string { return "(eq " + x + " " + strconv.Quote(val) + ")" },
	in: func(x string, vals []string) string {
		var q []string
		for _, v := range vals {
			q = append(q, strconv.Quote(v))
		}
		return "(has " + x + " (list " + strings.Join(q, " ") + "))"
	},
	and: func(t []string) string { return wrap("and", t) },
	or:  func(t []string) string { return wrap("or", t) },
}

func wrap(op string, t []string) string {
	if len(t) == 1 {
		return t[0]
	}
	return "(" + op + " " + strings.Join(t, " ") + ")"
}

var yttSyntax = syntax{
	dim: func(name string) string { return name },
	eq:  func(x, val string) string { return x + " == " + strconv.Quote(val) },
	in: func(x string, vals []string) string {
		var q []string
		for _, v := range vals {
			q = append(q, strconv.Quote(v))
		}
		return x + " in [" + strings.Join(q, ", ") + "]"
	},
	and: func(t []string) string { return yttJoin(" and ", t) },
	or:  func(t []string) string { return yttJoin(" or ", t) },
}

func yttJoin(op string, t []string) string {
	if len(t) == 1 {
		return t[0]
	}
	var p []string
	for _, x := range t {
		p = append(p, "("+x+")")
	}
	return strings.Join(p, op)
}

// condition is the expression true exactly for combos (values of dims).
// When combos are a product of per-dimension sets it is an "and" of one
// term per constrained dimension; otherwise an "or" of the combinations.
// Empty: always true.
func condition(sx syntax, dims []int, combos [][]string) string {
	sets := make([][]string, len(dims))
	for _, c := range combos {
		for i, v := range c {
			if !slices.Contains(sets[i], v) {
				sets[i] = append(sets[i], v)
			}
		}
	}
	product := 1
	for _, s := range sets {
		product *= len(s)
	}
	term := func(i int, vals []string) string {
		x := sx.dim(dimensions[dims[i]].name)
		if len(vals) == 1 {
			return sx.eq(x, vals[0])
		}
		return sx.in(x, vals)
	}
	if product == len(combos) {
		var terms []string
		for i, s := range sets {
			if len(s) < len(dimensions[dims[i]].values) {
				terms = append(terms, term(i, s))
			}
		}
		if len(terms) == 0 {
			return ""
		}
		return sx.and(terms)
	}
	var ors []string
	for _, c := range combos {
		var terms []string
		for i, v := range c {
			terms = append(terms, term(i, []string{v}))
		}
		ors = append(ors, sx.and(terms))
	}
	return sx.or(ors)
}
