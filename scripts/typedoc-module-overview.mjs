// A TypeDoc plugin (typedoc.config.mjs loads it): each public module's header comment becomes the
// module's overview, as @effect/docgen takes it. TypeDoc takes a file's first comment as the
// module's only when it carries `@module`; the sources follow docgen's convention instead (the
// header, then the imports). The header is parsed by TypeDoc itself, so its {@link}s resolve and
// are validated like any other. A module page left without an overview is a warning, which fails
// the build (treatWarningsAsErrors).
import { Converter, ReflectionKind } from "typedoc"
import ts from "typescript"

/** @param {import("typedoc").Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    if (!reflection.kindOf(ReflectionKind.Module) || reflection.comment !== undefined) return
    const file = context.getSymbolFromReflection(reflection)?.declarations?.find(ts.isSourceFile)
    const first = file?.statements[0]
    // the header must sit before an import or a re-export: before a declaration, it is that
    // declaration's comment
    const docComments = first === undefined
      ? []
      : (ts.getLeadingCommentRanges(file.text, first.pos) ?? []).filter((range) =>
        file.text.startsWith("/**", range.pos)
      )
    if (
      first !== undefined && docComments.length === 1 &&
      (ts.isImportDeclaration(first) || ts.isExportDeclaration(first))
    ) {
      reflection.comment = context.getNodeComment(first, false)
    }
    if (reflection.comment === undefined) {
      context.logger.warn(`The module ${reflection.getFullName()} has no overview: its file does not start with a doc comment`)
    }
  })
}
