// `pnpm check:apidocs [dir]`: opens the HTML API reference that `pnpm apidocs` builds (docs/api by
// default) in headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM), served over HTTP on
// 127.0.0.1 (TypeDoc's search and navigation load their data with scripts), and fails unless
// - the index and the page of every public module of both packages (one per packages/<pkg>/src/*.ts
//   but index.ts and globalSetup.ts, as typedoc.config.mjs takes them) load in Chromium with a 200,
//   with no console error, page error or failed request, and with the navigation tree built;
// - every page of the site is reached: crawled from index.html through every `a[href]` of every
//   page (the navigation tree's included). The module pages are read as loaded; every other page
//   is fetched (it must answer 200) and read with Chromium's HTML parser (DOMParser), which is much
//   cheaper than rendering the ~300 member pages and sees the same links and ids;
// - every link within the site resolves: its page or file answers 200, and its `#fragment` names an
//   element of that page;
// - TypeDoc's search box, given "withLock", lists Lock.withLock, and choosing it opens its page;
// - the navigation links the Lock module.
// It prints a summary: pages, links checked, the search's result.
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { chromium } from "playwright-core"

const root = path.resolve(import.meta.dirname, "..")
const site = path.resolve(process.argv[2] ?? path.join(root, "docs", "api"))
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium"
const concurrency = 2

if (!fs.existsSync(path.join(site, "index.html"))) {
  console.error(`check-apidocs: ${site}/index.html is missing: run pnpm apidocs first`)
  process.exit(1)
}

// --- the pages the site must have ------------------------------------------------------------------
// TypeDoc names a module page after its package and module, with `@` and `/` of a scoped name as `_`
const modulePages = ["/index.html"]
for (const dir of ["etcd", "testing", "cluster"]) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "packages", dir, "package.json"), "utf8")).name
  const prefix = pkg.replace(/[@/]/g, "_")
  modulePages.push(`/modules/${prefix}.html`)
  for (const file of fs.readdirSync(path.join(root, "packages", dir, "src")).sort()) {
    if (!file.endsWith(".ts") || file === "index.ts" || file === "globalSetup.ts") continue
    modulePages.push(`/modules/${prefix}.${file.slice(0, -3)}.html`)
  }
}
const lockModule = modulePages.find((page) => page.endsWith("/effect-etcd.Lock.html"))

// --- a static server on a free loopback port --------------------------------------------------------
const contentTypes = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".gif": "image/gif",
  ".woff2": "font/woff2"
}
const server = http.createServer((request, response) => {
  const pathname = decodeURIComponent(new URL(request.url ?? "/", "http://127.0.0.1").pathname)
  const file = path.join(site, pathname)
  if (file.startsWith(site + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
    response.writeHead(200, { "content-type": contentTypes[path.extname(file)] ?? "application/octet-stream" })
    fs.createReadStream(file).pipe(response)
  } else if (pathname === "/favicon.ico") {
    // Chromium asks for it on its own; the site declares no icon
    response.writeHead(204).end()
  } else {
    response.writeHead(404, { "content-type": "text/plain" }).end("not found")
  }
})
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
const origin = `http://127.0.0.1:${server.address().port}`

const failures = []
const fail = (message) => failures.push(message)

const browser = await chromium.launch({ executablePath, headless: true })
try {
  const context = await browser.newContext()

  /** page path -> { status, ids } */
  const pages = new Map()
  /** link URL -> the first page that has it, its href as written there, how many pages have it */
  const links = new Map()
  let linkCount = 0
  const queue = []
  const queued = new Set()
  const enqueue = (pagePath) => {
    if (!queued.has(pagePath)) {
      queued.add(pagePath)
      queue.push(pagePath)
    }
  }
  const record = (from, hrefs, ids, status) => {
    pages.set(from, { status, ids: new Set(ids) })
    for (const { href, url } of hrefs) {
      linkCount++
      const seen = links.get(url)
      if (seen === undefined) links.set(url, { from, href, pages: new Set([from]) })
      else seen.pages.add(from)
      const target = new URL(url)
      if (target.origin === origin && target.pathname.endsWith(".html")) enqueue(target.pathname)
    }
  }
  const readDocument = () => ({
    hrefs: Array.from(document.querySelectorAll("a[href]"), (a) => ({ href: a.getAttribute("href"), url: a.href })),
    ids: Array.from(document.querySelectorAll("[id], a[name]"), (element) => element.id || element.getAttribute("name"))
  })

  // --- the index and the module pages, loaded --------------------------------------------------------
  const load = async (tab, pagePath) => {
    const problems = []
    const onConsole = (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`)
    }
    const onPageError = (error) => problems.push(`page error: ${error.message}`)
    const onResponse = (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`)
    }
    const onRequestFailed = (request) =>
      problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`)
    tab.on("console", onConsole)
    tab.on("pageerror", onPageError)
    tab.on("response", onResponse)
    tab.on("requestfailed", onRequestFailed)
    try {
      const response = await tab.goto(origin + pagePath, { waitUntil: "load" })
      const status = response?.status() ?? 0
      if (status !== 200) {
        problems.push(`status ${status}`)
        pages.set(pagePath, { status, ids: new Set() })
        return
      }
      // TypeDoc's script builds the navigation tree from assets/navigation.js after the load
      await tab.waitForSelector("#tsd-nav-container a[href]", { state: "attached", timeout: 15_000 })
        .catch(() => problems.push("the navigation tree was not built"))
      const { hrefs, ids } = await tab.evaluate(readDocument)
      record(pagePath, hrefs, ids, status)
    } finally {
      tab.off("console", onConsole)
      tab.off("pageerror", onPageError)
      tab.off("response", onResponse)
      tab.off("requestfailed", onRequestFailed)
      for (const problem of problems) fail(`${pagePath}: ${problem}`)
    }
  }
  for (const page of modulePages) queued.add(page)
  const tabs = await Promise.all(Array.from({ length: concurrency }, () => context.newPage()))
  const loadQueue = [...modulePages]
  await Promise.all(tabs.map(async (tab) => {
    while (loadQueue.length > 0) await load(tab, loadQueue.shift())
  }))
  const loaded = modulePages.filter((page) => pages.get(page)?.status === 200).length

  // --- every other page, fetched and parsed ----------------------------------------------------------
  const parser = tabs[0]
  await parser.goto(`${origin}/index.html`, { waitUntil: "domcontentloaded" })
  // runs in Chromium: the page's links, resolved against its own URL, and its ids
  const parse = ({ base, html }) => {
    const parsed = new DOMParser().parseFromString(html, "text/html")
    const baseElement = parsed.createElement("base")
    baseElement.href = base
    parsed.head.prepend(baseElement)
    return {
      hrefs: Array.from(parsed.querySelectorAll("a[href]"), (a) => ({ href: a.getAttribute("href"), url: a.href })),
      ids: Array.from(parsed.querySelectorAll("[id], a[name]"), (element) => element.id || element.getAttribute("name"))
    }
  }
  let fetched = 0
  while (queue.length > 0) {
    const batch = queue.splice(0, 20)
    await Promise.all(batch.map(async (pagePath) => {
      const response = await fetch(origin + pagePath)
      fetched++
      if (response.status !== 200) {
        pages.set(pagePath, { status: response.status, ids: new Set() })
        return
      }
      const { hrefs, ids } = await parser.evaluate(parse, { base: origin + pagePath, html: await response.text() })
      record(pagePath, hrefs, ids, 200)
    }))
  }

  for (const page of modulePages) {
    if (pages.get(page)?.status !== 200) fail(`the page ${page} did not load`)
  }

  // --- every link within the site resolves -----------------------------------------------------------
  let internal = 0
  let withFragment = 0
  let external = 0
  for (const [url, { from, href, pages: referrers }] of links) {
    const where = referrers.size > 1 ? `${from} (and ${referrers.size - 1} more pages)` : from
    const target = new URL(url)
    if (target.origin !== origin) {
      external++
      continue
    }
    internal++
    let status = pages.get(target.pathname)?.status
    if (status === undefined) {
      status = (await fetch(origin + target.pathname)).status
      pages.set(target.pathname, { status, ids: new Set() })
    }
    if (status !== 200) {
      fail(`${where}: the link ${href} leads to a ${status}`)
      continue
    }
    const fragment = decodeURIComponent(target.hash.slice(1))
    if (fragment !== "" && target.pathname.endsWith(".html")) {
      withFragment++
      if (!pages.get(target.pathname).ids.has(fragment)) {
        fail(`${where}: the link ${href} names #${fragment}, which ${target.pathname} lacks`)
      }
    }
  }

  // --- the search box finds Lock.withLock, and the navigation links the Lock module ------------------
  const tab = tabs[1]
  const searchProblems = []
  tab.on("pageerror", (error) => searchProblems.push(`page error: ${error.message}`))
  await tab.goto(`${origin}/index.html`, { waitUntil: "load" })
  await tab.waitForSelector("#tsd-nav-container a[href]", { state: "attached", timeout: 15_000 }).catch(() => {})
  const navigationLinksLock = await tab.locator(`#tsd-nav-container a[href$="${lockModule.slice(1)}"]`).count() > 0
  if (!navigationLinksLock) fail(`the navigation of /index.html has no link to ${lockModule}`)
  // withLock is a dual API, a const: TypeDoc files it under variables/ (a function would be under functions/)
  const withLockPage = /\/effect-etcd\.Lock\.withLock\.html$/
  let searchResult = "nothing"
  let opened = "nothing"
  try {
    await tab.click("#tsd-search-trigger")
    await tab.locator("#tsd-search-input").pressSequentially("withLock")
    const result = tab.locator(`#tsd-search-results a[href$="effect-etcd.Lock.withLock.html"]`).first()
    await result.waitFor({ timeout: 15_000 })
    searchResult = (await result.innerText()).replace(/\s+/g, "")
    if (searchResult !== "effect-etcd.Lock.withLock") searchResult += " (expected effect-etcd.Lock.withLock)"
    const [response] = await Promise.all([
      tab.waitForResponse((response) => withLockPage.test(new URL(response.url()).pathname)),
      result.click()
    ])
    opened = `${new URL(response.url()).pathname} (${response.status()})`
    if (response.status() !== 200) throw new Error(`choosing it opened ${opened}`)
    await tab.waitForURL(withLockPage)
    const title = await tab.title()
    opened += `, titled "${title}"`
    if (!title.includes("withLock")) searchProblems.push(`the result opened ${opened}`)
  } catch (error) {
    searchProblems.push(`typing "withLock" did not lead to Lock.withLock's page: ${error.message.split("\n")[0]}`)
  }
  if (searchResult.includes("expected")) searchProblems.push(`the result reads ${searchResult}`)
  for (const problem of searchProblems) fail(`search: ${problem}`)

  console.log(
    `check-apidocs: ${loaded} of ${modulePages.length} pages (the index and every module page) loaded in Chromium, ` +
      `${fetched} more pages fetched and parsed: ${pages.size} pages and files checked in all`
  )
  console.log(
    `check-apidocs: ${linkCount} links read, ${internal} distinct targets within the site checked ` +
      `(${withFragment} with a #fragment), ${external} outside the site not followed`
  )
  console.log(`check-apidocs: search "withLock" lists ${searchResult}, which opens ${opened}`)
  console.log(`check-apidocs: the navigation links ${lockModule}: ${navigationLinksLock}`)
} finally {
  await browser.close()
  server.close()
}

if (failures.length > 0) {
  const shown = failures.slice(0, 100)
  for (const failure of shown) console.error(`check-apidocs: ${failure}`)
  if (failures.length > shown.length) console.error(`check-apidocs: ... and ${failures.length - shown.length} more`)
  console.error(`check-apidocs: FAILED (${failures.length} problem(s))`)
  process.exit(1)
}
console.log("check-apidocs: ok")
