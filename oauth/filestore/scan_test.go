package filestore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/oauth"
)

// referenceCredentials decodes data with encoding/json and applies the grant
// rule of the file layout; the scanner must agree with it on every valid file.
func referenceCredentials(data []byte, host, prefix string) (oauth.Credentials, bool) {
	var root map[string]any
	if json.Unmarshal(data, &root) != nil || root == nil {
		return oauth.Credentials{}, false
	}
	str := func(v any) string { s, _ := v.(string); return s }
	hosts, _ := root["hosts"].(map[string]any)
	block, _ := hosts[host].(map[string]any)
	access := str(block["apiKey"])
	if oa, ok := block["oauth"].(map[string]any); ok && access != "" && strings.HasPrefix(access, prefix) &&
		str(oa["refreshToken"]) != "" && str(oa["tokenEndpoint"]) != "" && str(oa["clientId"]) != "" {
		return oauth.Credentials{Grant: &oauth.Grant{AccessToken: access, RefreshToken: str(oa["refreshToken"])}}, true
	}
	if access != "" {
		return oauth.Credentials{APIKey: access, APIKeySource: "host"}, true
	}
	if k := str(root["apiKey"]); k != "" {
		return oauth.Credentials{APIKey: k, APIKeySource: "root"}, true
	}
	return oauth.Credentials{}, true
}

func FuzzScanCredentials(f *testing.F) {
	f.Add([]byte(configWithGrant("https://t/token", "hch-at-a", "hch-rt-b", time.Unix(5, 0))))
	f.Add([]byte(`{"hosts":{"hermes":{"apiKey":"hch-at-\u0041","oauth":{"refreshToken":"r\"x","clientId":"c","tokenEndpoint":"e"}}}}`))
	f.Add([]byte(`{"api\u004bey":"k","hosts":[{"hermes":1}]}`))
	f.Add([]byte(`{"hosts":{"hermes":{"apiKey":"key","oauth":{}}},"apiKey":7}`))
	f.Add([]byte(` {"a":[1,{"b":"}"}],"hosts":{"x":{},"hermes":{"apiKey":""}},"apiKey":"root"} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanCredentials(data, "hermes", testLayout("hch-at-"))
		want, valid := referenceCredentials(data, "hermes", "hch-at-")
		if !valid {
			return // invalid files: the scanner may or may not notice; writers always do
		}
		if err != nil && strings.Contains(err.Error(), "ambiguous") {
			return // encoding/json takes the last of a name given twice; the scanner refuses
		}
		if err != nil {
			t.Fatalf("valid file rejected: %v\n%s", err, data)
		}
		if (got.Grant == nil) != (want.Grant == nil) || got.APIKey != want.APIKey || got.APIKeySource != want.APIKeySource {
			t.Fatalf("scanner %+v, reference %+v\n%s", got, want, data)
		}
		if got.Grant != nil && (got.Grant.AccessToken != want.Grant.AccessToken || got.Grant.RefreshToken != want.Grant.RefreshToken) {
			t.Fatalf("grant differs\n%s", data)
		}
	})
}
