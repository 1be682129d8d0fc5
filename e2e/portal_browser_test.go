package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/internal/testutil"
)

// TestPortalInABrowser opens the developer portal of a running node in headless Chromium:
// the list of APIs, an API's rendered document reached by its link, and a consumer's page
// with the quota it has used, with the page's styles applied under its content security
// policy and nothing failing in the page.
func TestPortalInABrowser(t *testing.T) {
	chromium := testutil.Chromium(t)
	be := startBackend(t)
	key, hash, _ := gateway.NewKey()
	n := startNode(t, writeConfig(t, map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: store}
spec:
  http: {baseURL: "` + be.URL + `"}
  operations:
    getItem: {http: {method: GET, path: "/items/{id}"}}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: webshop}
spec:
  keys: [{name: k, sha256: ` + hash + `}]
---
apiVersion: causeway/v1
kind: API
metadata: {name: catalog, description: Items for sale}
spec:
  basePath: /api/catalog
  policies:
    auth: {apiKey: {}}
    quota: {requests: 100, per: day}
  routes:
    - match: GET /items/{id}
      description: One item
      proxy: {call: store.getItem, with: {id: "${{ .path.id }}"}}
`}), t.TempDir())
	for range 3 {
		if resp, body := call(t, "GET", "http://"+n.http+"/api/catalog/items/7", map[string]string{"X-Api-Key": key}, ""); resp.StatusCode != 200 {
			t.Fatalf("item: %d %s", resp.StatusCode, body)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser, which lives as long as that call's context: it
	// gets no timeout of its own; each step below does.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	var (
		mu       sync.Mutex
		problems []string
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, fmt.Sprintf("console error: %v", e.Args))
			}
		}
	}); err != nil {
		t.Fatalf("listening to the page: %v", err)
	}
	// Each step has a time limit of its own; a step that fails shows what the page says.
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, stop := context.WithTimeout(ctx, 15*time.Second)
		defer stop()
		if err := chromedp.Do(step, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
			t.Fatalf("%s: %v\nthe page:\n%s", what, err, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		step, stop := context.WithTimeout(ctx, 15*time.Second)
		defer stop()
		s, err := chromedp.Run(step, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	admin := "http://" + n.admin
	do("the portal", chromedp.Navigate(admin+"/portal"), chromedp.WaitVisible(chromedp.CSS(`a[href="/portal/apis/catalog"]`)))
	list := text("main")
	headerColor, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).backgroundColor`))
	if err != nil {
		t.Fatal(err)
	}
	do("following the API's link", chromedp.Click(chromedp.CSS(`a[href="/portal/apis/catalog"]`)), chromedp.WaitVisible(chromedp.CSS(`section.op`)))
	apiPage := text("main")
	do("the consumer's page", chromedp.Navigate(admin+"/portal/consumers/webshop"), chromedp.WaitVisible(chromedp.CSS(`main table`)))
	consumerPage := text("main")
	for _, want := range []string{"catalog", "Items for sale", "/api/catalog", "API key", "webshop"} {
		if !strings.Contains(list, want) {
			t.Errorf("the portal's list lacks %q:\n%s", want, list)
		}
	}
	if headerColor != "rgb(29, 35, 48)" {
		t.Errorf("the page's styles are not applied (header background %q): the content security policy blocks them?", headerColor)
	}
	for _, want := range []string{"GET", "/api/catalog/items/{id}", "One item", "id", "429", "401"} {
		if !strings.Contains(apiPage, want) {
			t.Errorf("the API's page lacks %q:\n%s", want, apiPage)
		}
	}
	// The quota row: 100 per day over the route, 3 used, 97 remaining.
	if !strings.Contains(consumerPage, "100 per day\tGET /items/{id}\n\t3\t97\t") {
		t.Errorf("the consumer's page does not show 3 of 100 used:\n%q", consumerPage)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the pages had errors: %v", problems)
	}
}
