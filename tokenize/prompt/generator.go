package prompt

// Generator produces an endless, deterministic stream of paragraphs in one
// of the mixes. Each paragraph ends with a blank line.
type Generator struct {
	r   *rng
	mix string
}

// NewGenerator returns the generator for seed and mix (an unknown mix is
// treated as MixMixed).
func NewGenerator(seed uint64, mix string) *Generator {
	return &Generator{r: newRNG(seed), mix: mix}
}

// Paragraph returns the next paragraph.
func (g *Generator) Paragraph() string {
	kind := g.mix
	if kind != MixEnglish && kind != MixChinese && kind != MixCode {
		// Mixed: about half English, a quarter each Chinese and code.
		kind = []string{MixEnglish, MixEnglish, MixChinese, MixCode}[g.r.intn(4)]
	}
	switch kind {
	case MixEnglish:
		return englishParagraph(g.r) + "\n\n"
	case MixChinese:
		return chineseParagraph(g.r) + "\n\n"
	default:
		return codeBlock(g.r) + "\n"
	}
}
