package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// answer is one line typed at a prompt, or why there is none.
type answer struct {
	text string
	err  error
}

// ask writes prompt to w and returns the line a person types on stdin,
// without its line break; io.EOF when stdin ends first. With hidden, the
// terminal does not echo what is typed. Ctrl-C ends it at once: the
// context the signal cancels returns errInterrupted, whatever the
// terminal is doing, and no line typed later is taken for an answer.
func (c *cli) ask(ctx context.Context, w io.Writer, hidden bool, prompt string) (string, error) {
	if hidden {
		defer hideInput(c.stdin)()
	}
	fmt.Fprint(w, prompt)
	c.readOnce.Do(func() {
		c.lines = make(chan answer)
		go readLines(c.stdin, c.lines)
	})
	select {
	case a, ok := <-c.lines:
		if !ok {
			return "", io.EOF
		}
		return a.text, a.err
	case <-ctx.Done():
		fmt.Fprintln(w) // end the prompt's line before the message
		return "", errInterrupted
	}
}

// readLines sends each line read from r, then the error that ended it,
// and closes lines. One goroutine reads for every prompt of a command,
// so that no typed-ahead line is lost between prompts.
func readLines(r io.Reader, lines chan<- answer) {
	defer close(lines)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			lines <- answer{text: strings.TrimRight(line, "\r\n")}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				lines <- answer{err: err}
			}
			return
		}
	}
}

// maxPeerName is the longest peer name taken, in characters.
const maxPeerName = 64

// checkPeerName says what is wrong with a peer name a person typed; nil
// when it can be stored.
func checkPeerName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return errors.New("it is not valid text")
	case utf8.RuneCountInString(name) > maxPeerName:
		return fmt.Errorf("it is longer than %d characters", maxPeerName)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("it holds a control or invisible character (%U)", r)
		}
	}
	return nil
}
