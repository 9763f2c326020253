// The step after `docgen` in `pnpm docgen`: puts each module page's front matter back.
// @effect/docgen 0.5.2 writes a module page's meta block after a blank line, so prettier (which it
// formats the page with) does not see front matter and turns the opening `---` into a thematic break:
// the page starts `***`, then `title: ...`, `nav_order: ...`, `parent: Modules`, `---`. Here such a
// start becomes `---` + those lines + `---` again. A page already starting with front matter is left
// as it is (a docgen that no longer needs this step); a page that starts any other way fails the step.
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const packages = ["etcd", "testing", "cluster"]
const broken = /^\*\*\*\n\n((?:[a-z_]+: .*\n)+)---\n/

let fixed = 0
let kept = 0
const failures = []
for (const pkg of packages) {
  const dir = path.join(root, "packages", pkg, "docs", "modules")
  if (!fs.existsSync(dir)) {
    failures.push(`packages/${pkg}/docs/modules is missing: run docgen first`)
    continue
  }
  for (const name of fs.readdirSync(dir).filter((name) => name.endsWith(".md")).sort()) {
    const file = path.join(dir, name)
    const text = fs.readFileSync(file, "utf8")
    const match = broken.exec(text)
    if (match !== null) {
      fs.writeFileSync(file, `---\n${match[1]}---\n${text.slice(match[0].length)}`)
      fixed++
    } else if (/^---\n(?:[a-z_]+: .*\n)+---\n/.test(text)) {
      kept++
    } else {
      failures.push(`${path.relative(root, file)} starts neither with front matter nor with docgen's broken form`)
    }
  }
}
if (failures.length > 0) {
  for (const failure of failures) console.error(`docgen-front-matter: ${failure}`)
  process.exit(1)
}
console.log(`docgen-front-matter: ${fixed} page(s) given their front matter back, ${kept} already had it`)
