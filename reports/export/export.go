// Package export writes tmon-report's files: the report as one
// self-contained HTML document (reports/web renders it, assets and chart
// data inlined, nothing fetched) and as a paginated PDF, which is the same
// document printed by a headless chromium, so every chart is defined once.
// It comes last in the flow: database → reports/query → reports/web → here.
package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tmon-project/tmon/reports/query"
	"github.com/tmon-project/tmon/reports/web"
)

// HTML renders the report of sel as one self-contained document.
func HTML(ctx context.Context, srv *web.Server, sel query.Selection) ([]byte, error) {
	var b bytes.Buffer
	if err := srv.Render(ctx, &b, "/report", sel, url.Values{}, true); err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	return b.Bytes(), nil
}

// WriteHTML writes the report to path (via a temporary file and rename, so a
// reader never sees half a report).
func WriteHTML(ctx context.Context, srv *web.Server, sel query.Selection, path string) error {
	b, err := HTML(ctx, srv, sel)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Chromium finds a chromium binary: the given path, else chromium,
// chromium-browser, google-chrome or google-chrome-stable on PATH.
func Chromium(path string) (string, error) {
	if path != "" {
		return exec.LookPath(path)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium found (install Debian's chromium, or give -chromium PATH): the PDF is printed by a headless chromium")
}

// BrowserFlags are the flags of the headless chromium: no display, no
// sandbox (containers, root), no network beside the page itself.
func BrowserFlags(userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userDataDir),
		// The width of an A4 landscape page less its margins (@page in
		// tmon.css) at 96 CSS px an inch: the page is laid out at the
		// width it is printed.
		chromedp.WindowSize(1032, 1400),
	}
}

// PDF prints the report of sel to a paginated PDF at path with the headless
// chromium at browser (see Chromium).
func PDF(ctx context.Context, srv *web.Server, sel query.Selection, browser, path string) error {
	doc, err := HTML(ctx, srv, sel)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tmon-report-pdf")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	htmlPath := filepath.Join(dir, "report.html")
	if err := os.WriteFile(htmlPath, doc, 0o600); err != nil {
		return err
	}
	pdf, err := PrintFile(ctx, browser, htmlPath, filepath.Join(dir, "profile"))
	if err != nil {
		return err
	}
	return writeFile(path, pdf)
}

// PrintFile loads a local HTML file in headless chromium, waits until its
// charts are drawn (body[data-ready]) and prints it to PDF.
func PrintFile(ctx context.Context, browser, htmlPath, userDataDir string) ([]byte, error) {
	opts := append(BrowserFlags(userDataDir), chromedp.ExecPath(browser))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	cctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	cctx, cancel3 := context.WithTimeout(cctx, 2*time.Minute)
	defer cancel3()
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, err
	}
	err = chromedp.Do(cctx,
		chromedp.Navigate((&url.URL{Scheme: "file", Path: abs}).String()),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)),
		// Lay the charts out for paper: print styles on, then the charts
		// take their boxes' new widths (tmon.js redraws on resize).
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
			return err
		}),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.dispatchEvent(new Event("resize"))`))
			return err
		}),
	)
	var pdf []byte
	if err == nil {
		pdf, err = chromedp.Run(cctx, chromedp.PrintToPDF(
			chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFLandscape(), chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground(),
			chromedp.PDFHeaderTemplate(`<span></span>`),
			chromedp.PDFFooterTemplate(`<div style="font-size:8px;width:100%;text-align:center">tmon report · page <span class="pageNumber"></span> of <span class="totalPages"></span></div>`),
		))
	}
	if err != nil {
		return nil, fmt.Errorf("print %s to PDF with %s: %w", htmlPath, browser, err)
	}
	return pdf, nil
}
