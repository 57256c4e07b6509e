package prompt

import (
	"fmt"
	"strings"
)

// Our own small English grammar: sentences assembled from word lists,
// grouped into paragraphs. The result reads like plain prose about work,
// travel and measurement; it is not meant to make sense for long.

var (
	enNames    = []string{"Mara", "Tomas", "Ilse", "Jonah", "Priya", "Oren", "Keiko", "Dmitri", "Amara", "Lucas", "Noor", "Felix", "Hana", "Sven", "Leila", "Bruno"}
	enAdj      = []string{"quiet", "narrow", "patient", "crowded", "careful", "bright", "heavy", "unusual", "steady", "distant", "familiar", "small", "restless", "cold", "generous", "brief", "tired", "sudden", "ordinary", "curious"}
	enNouns    = []string{"station", "river", "notebook", "engineer", "harbor", "village", "machine", "garden", "letter", "bridge", "window", "market", "library", "kitchen", "signal", "report", "orchard", "ferry", "workshop", "schedule", "lantern", "corridor", "teacher", "record"}
	enPlurals  = []string{"stations", "rivers", "notebooks", "engineers", "boats", "villages", "machines", "gardens", "letters", "bridges", "windows", "markets", "readers", "students", "signals", "reports", "trains", "neighbors", "measurements", "requests"}
	enPastTr   = []string{"repaired", "noticed", "carried", "measured", "described", "opened", "followed", "painted", "checked", "borrowed", "finished", "questioned", "rebuilt", "recorded", "cleaned", "watched"}
	enPastIntr = []string{"waited", "arrived", "laughed", "stopped", "returned", "slowed down", "disappeared", "changed", "improved", "hesitated", "wandered off", "settled"}
	enPresPl   = []string{"gather", "argue about", "write about", "wait for", "repair", "collect", "compare", "talk about", "prepare", "remember"}
	enPlaces   = []string{"the old town", "the northern valley", "a harbor city", "the mountain pass", "the university", "a small island", "the eastern district", "the river delta", "the border town", "the capital"}
	enTimes    = []string{"before dawn", "in the late afternoon", "after the storm", "every Tuesday", "last winter", "during the long holiday", "at midnight", "the following morning", "within an hour", "for most of the year"}
	enPreps    = []string{"near", "behind", "across", "beside", "under", "beyond", "along", "inside"}
	enManners  = []string{"without hurry", "with great care", "as quietly as possible", "in small groups", "more often than before", "with surprising skill", "before anyone noticed", "almost every day"}
	enReasons  = []string{"because the road had flooded", "since nobody else had time", "although it was raining", "because the numbers looked wrong", "as the season was ending", "once the lights came back", "while the others slept"}
	enLinks    = []string{"Later,", "Meanwhile,", "Still,", "By then,", "In the end,", "For a while,", "Even so,", "Afterwards,", "At first,", "Eventually,"}
	enQuotes   = []string{"We should start again", "It is later than you think", "Nobody told me about the bridge", "Keep the window open", "The numbers will tell us", "Bring the notebook"}
	enUnits    = []string{"minutes", "kilometers", "pages", "seconds", "liters", "people", "hours", "percent"}
)

func enPhrase(r *rng) string {
	return "the " + pick(r, enAdj) + " " + pick(r, enNouns)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func englishSentence(r *rng) string {
	switch r.intn(9) {
	case 0:
		return fmt.Sprintf("%s %s %s %s %s.", capitalize(enPhrase(r)), pick(r, enPastIntr), pick(r, enPreps), enPhrase(r), pick(r, enTimes))
	case 1:
		return fmt.Sprintf("%s %s %s %s.", pick(r, enNames), pick(r, enPastTr), enPhrase(r), pick(r, enReasons))
	case 2:
		return fmt.Sprintf("In %s, the %s %s %s %s.", pick(r, enPlaces), pick(r, enPlurals), pick(r, enPresPl), enPhrase(r), pick(r, enManners))
	case 3:
		return fmt.Sprintf("%s %s %s the %s %s.", pick(r, enLinks), pick(r, enNames), pick(r, enPastTr), pick(r, enPlurals), pick(r, enManners))
	case 4:
		return fmt.Sprintf("About %d %s %s %s, which %s.", r.between(2, 950), pick(r, enUnits), pick(r, []string{"passed", "were lost", "were counted", "remained"}), pick(r, enTimes), pick(r, []string{"surprised everyone", "nobody expected", "seemed about right", "changed the plan"}))
	case 5:
		return fmt.Sprintf("\"%s,\" %s said, and %s %s.", pick(r, enQuotes), pick(r, enNames), pick(r, []string{"nobody", "everyone", "the others", "the teacher"}), pick(r, enPastIntr))
	case 6:
		return fmt.Sprintf("Why had %s %s %s?", enPhrase(r), pick(r, enPastIntr), pick(r, enTimes))
	case 7:
		return fmt.Sprintf("%s, %s and %s %s %s.", pick(r, enNames), pick(r, enNames), pick(r, enNames), pick(r, enPastTr), enPhrase(r))
	default:
		return fmt.Sprintf("It took %d.%d %s to reach %s, %s.", r.between(1, 40), r.intn(10), pick(r, enUnits), pick(r, enPlaces), pick(r, enReasons))
	}
}

func englishParagraph(r *rng) string {
	n := r.between(3, 7)
	s := make([]string, n)
	for i := range s {
		s[i] = englishSentence(r)
	}
	return strings.Join(s, " ")
}
