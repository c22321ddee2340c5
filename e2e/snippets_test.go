package e2e

import (
	"errors"
	"go/ast"
	"go/doc/comment"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// snippetPrelude wraps a snippet: it imports what snippets use and gives
// the names they take as given (a logger, a Hermes home, the host's chi
// router, ...). A snippet is a function body that returns an error.
const snippetPrelude = `package snippet

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/middleware"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/prommetrics"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/mcp"
	"github.com/memconnect/memconnect/webhook"
	"github.com/memconnect/memconnect/examples/desktop"
)

func snippet(
	logger zerolog.Logger, hermesHome string, r chi.Router, mux *http.ServeMux,
	registry *provider.Registry, memory *memconnect.Router, cfg memconnect.Config,
	hosts, origins []string, token, secret string, isCallback func(*http.Request) bool,
	opts []honcho.Option, currentUser func(*http.Request) (struct{ Profile string }, error),
) error {
`

// TestDocSnippetsCompile type-checks every Go snippet of the README and of
// the package documentation, so that none shows an API that does not exist.
// Unused names and imports are allowed: a snippet shows a part.
func TestDocSnippetsCompile(t *testing.T) {
	var snippets []docSnippet
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1) {
		snippets = append(snippets, docSnippet{where: "README.md snippet " + strconv.Itoa(i+1), code: string(m[1])})
	}
	if len(snippets) < 2 {
		t.Fatalf("found %d Go snippets in README.md, want the server and the token-source ones", len(snippets))
	}
	for _, dir := range []string{"..", "../middleware", "../examples/desktop", "../oauth", "../oauth/flow", "../provider", "../provider/honcho", "../handlers"} {
		snippets = append(snippets, packageDocSnippets(t, dir)...)
	}

	imp := importer.ForCompiler(token.NewFileSet(), "source", nil)
	checked := 0
	for _, s := range snippets {
		fset := token.NewFileSet()
		src := snippetPrelude + s.code + "\nreturn nil\n}\n"
		f, err := parser.ParseFile(fset, "snippet.go", src, 0)
		if err != nil {
			t.Errorf("%s does not parse as Go: %v\n%s", s.where, err, s.code)
			continue
		}
		conf := types.Config{Importer: imp, Error: func(err error) {
			var te types.Error
			if errors.As(err, &te) && te.Soft {
				return // unused variables and imports
			}
			t.Errorf("%s: %v\n%s", s.where, err, s.code)
		}}
		_, _ = conf.Check("snippet", fset, []*ast.File{f}, nil)
		checked++
	}
	if checked == 0 {
		t.Fatal("no snippet was checked")
	}
}

type docSnippet struct{ where, code string }

// packageDocSnippets returns the code blocks of the package comment in dir
// that are Go statements: those with an assignment or a call. Tables of
// routes or errors and JSON are not.
func packageDocSnippets(t *testing.T, dir string) []docSnippet {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []docSnippet
	for _, pkg := range pkgs {
		for name, f := range pkg.Files {
			if f.Doc == nil {
				continue
			}
			var p comment.Parser
			for _, b := range p.Parse(f.Doc.Text()).Content {
				code, ok := b.(*comment.Code)
				if !ok || !regexp.MustCompile(`:=|\w\(`).MatchString(code.Text) || strings.HasPrefix(strings.TrimSpace(code.Text), "{") {
					continue
				}
				out = append(out, docSnippet{where: "package doc of " + filepath.Join(dir, filepath.Base(name)), code: code.Text})
			}
		}
	}
	return out
}
