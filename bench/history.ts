/**
 * The targets over every full run committed so far: `npm run bench:history`. Reads each
 * committed version of `bench/RESULTS.md` from git (quick runs left out) and prints, per
 * target, how many runs met it, the median ratio and its range, and the latest run's.
 *
 * One run's verdict near a limit says little on a shared machine (see docs/benchmark.md);
 * the runs together show which targets are met every time, which sit on their limit, and
 * which are never met. The runs measured different versions of the code, on different
 * machines: the table is their record, not one experiment.
 * @module
 */
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from './report.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const FILE = 'bench/RESULTS.md'

const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' })

/** One target row of a run: the ratio and whether it was met. */
interface Verdict {
  ratio: number
  met: boolean
}

/** A run's commit, date, bare node:http CPU per request, and its targets by name. */
interface Past {
  commit: string
  date: string
  bareNodeUs: number | undefined
  targets: Map<string, Verdict>
}

/** The rows of the "## Targets" table: `| target | scenario | ... | ratio | ... | result |`. */
export function parseTargets(markdown: string): Map<string, Verdict> {
  const targets = new Map<string, Verdict>()
  const section = markdown.split(/^## Targets$/m)[1]?.split(/^## /m)[0] ?? ''
  for (const line of section.split('\n')) {
    // | target | scenario | Tessera | other | ratio | limit | [budget | floor |] result |
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim())
    if (cells.length < 7 || cells[0] === 'target') continue
    const ratio = Number(cells[4])
    if (!Number.isFinite(ratio)) continue
    targets.set(`${cells[0]} | ${cells[1]}`, { ratio, met: !cells.at(-1)!.includes('missed') })
  }
  return targets
}

function pastRuns(): Past[] {
  const log = git('log', '--format=%h %cs', '--', FILE).trim().split('\n').filter(Boolean)
  const runs: Past[] = []
  // a report written again from the same results.json (a change to the report's text) is the
  // same run: known by its start time, and named by the commit that first recorded it
  const byStart = new Map<string, Past>()
  for (const entry of log) {
    const [commit, date] = entry.split(' ') as [string, string]
    const markdown = git('show', `${commit}:${FILE}`)
    if (markdown.includes('**Quick mode')) continue
    const targets = parseTargets(markdown)
    if (targets.size === 0) continue
    const started = /^Written by .* on (\S+?),? finished/m.exec(markdown)?.[1]
    const known = started === undefined ? undefined : byStart.get(started)
    if (known !== undefined) {
      Object.assign(known, { commit, date })
      continue
    }
    const bare = /node:http[^\n]*?no session \(([\d.]+) µs\)/.exec(markdown)
    const run = { commit, date, bareNodeUs: bare ? Number(bare[1]) : undefined, targets }
    runs.push(run)
    if (started !== undefined) byStart.set(started, run)
  }
  return runs
}

function table(runs: Past[]): string {
  const names = [...new Set(runs.flatMap((run) => [...run.targets.keys()]))]
  const lines = [
    `${runs.length} full runs, newest first: ${runs.map((r) => `${r.commit} (${r.date}, bare node:http ${r.bareNodeUs ?? '?'} µs)`).join('; ')}.`,
    '',
    '| target | scenario | met | median ratio | range | latest |',
    '| --- | --- | ---: | ---: | --- | --- |',
  ]
  for (const name of names) {
    const seen = runs.flatMap((run) => {
      const verdict = run.targets.get(name)
      return verdict === undefined ? [] : [verdict]
    })
    const ratios = seen.map((v) => v.ratio)
    const latest = runs[0]!.targets.get(name)
    const [target, scenario] = name.split(' | ')
    lines.push(
      `| ${target} | ${scenario} | ${seen.filter((v) => v.met).length} of ${seen.length} | ${median(ratios).toFixed(2)} | ${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)} | ${latest === undefined ? '-' : `${latest.ratio.toFixed(2)}, ${latest.met ? 'met' : 'missed'}`} |`,
    )
  }
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = pastRuns()
  if (runs.length === 0) {
    console.error(`no full run of ${FILE} in this repository's history`)
    process.exit(1)
  }
  console.log(table(runs))
}
