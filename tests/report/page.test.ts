// The one page shell: escaped title, sections in order, JSON and scripts that cannot end their
// <script> early, Chart.js and the chart module only on pages with charts.

import { describe, expect, it } from 'vitest';
import { escapeHtml, inlineJs, inlineJson } from '../../report/html.js';
import { dl, figure, headRow, htmlPage } from '../../report/page.js';

describe('htmlPage', () => {
  const page = htmlPage({
    title: 'a <b> & "c"',
    css: '.x { color: red; }',
    sections: ['<section>one</section>', '', '<section>two</section>'],
    data: [
      { id: 'd1', value: { s: '</script><b>' } },
      { id: 'd2', value: [1, 2] },
    ],
    charts: { chartJs: 'var C = "</script>";', charts: 'draw();' },
  });

  it('is one self-contained document with the escaped title and the sections in order', () => {
    expect(page.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(page).toContain('<title>a &lt;b&gt; &amp; &quot;c&quot;</title>');
    expect(page).toContain('.x { color: red; }</style>');
    expect(page).toContain('<main>\n<section>one</section>\n<section>two</section>\n</main>');
    expect(page).not.toMatch(/src="https?:|href="https?:/);
  });

  it('inlines the data, then Chart.js, then the chart module, none able to end its tag early', () => {
    const scripts = [...page.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    expect(scripts).toEqual([inlineJson({ s: '</script><b>' }), '[1,2]', 'var C = "<\\/script>";', 'draw();']);
    expect(JSON.parse(scripts[0])).toEqual({ s: '</script><b>' });
    expect(page.indexOf('id="d1"')).toBeLessThan(page.indexOf('id="d2"'));
  });

  it('has no scripts but the data without charts', () => {
    const bare = htmlPage({ title: 't', css: '', sections: [], data: [{ id: 'd', value: 1 }] });
    expect(bare.match(/<script\b/g)).toHaveLength(1);
    expect(bare).toContain('<script type="application/json" id="d">1</script>');
  });
});

describe('page pieces', () => {
  it('escape what they are given as text', () => {
    expect(escapeHtml(`<a href="x">&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
    expect(inlineJs('a</SCRIPT>b</script')).toBe('a<\\/SCRIPT>b<\\/script');
    expect(dl([['<k>', '<b>v</b>']])).toBe('<dl><dt>&lt;k&gt;</dt><dd><b>v</b></dd></dl>');
    expect(headRow(['a<b'])).toBe('<thead><tr><th>a&lt;b</th></tr></thead>');
    expect(figure('chart-x', 'Cap', 300, { cls: 'wide', extra: '<i></i>' })).toBe(
      '<figure class="wide"><figcaption>Cap</figcaption>' +
        '<div class="chart" style="height:300px"><canvas id="chart-x"></canvas></div><i></i></figure>',
    );
  });
});
