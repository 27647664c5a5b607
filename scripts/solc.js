#!/usr/bin/env node
// A solc executable on top of npm's solcjs (WebAssembly): standard JSON in on
// stdin, clean standard JSON out on stdout. The solcjs CLI prints a stray SMT
// line before its JSON and resolves imports only with --base-path, so tools
// (fogfed.chain.compile, py-solc-x, Ape) call this wrapper instead.
//
//   node scripts/solc.js --version            -> "Version: 0.8.37+commit.<hash>..."
//   node scripts/solc.js --standard-json [--base-path DIR] [--allow-paths ...] < input.json
'use strict';
const fs = require('fs');
const path = require('path');

function loadSolc() {
  try {
    return require('solc');
  } catch (err) {
    process.stderr.write('solc.js: npm package "solc" not found; run `npm ci` in the project root\n');
    process.exit(3);
  }
}

function parseArgs(argv) {
  const opts = { basePath: process.cwd(), includePaths: [], mode: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--version') opts.mode = 'version';
    else if (a === '--standard-json') opts.mode = 'standard-json';
    else if (a === '--base-path') opts.basePath = argv[++i];
    else if (a === '--include-path') opts.includePaths.push(argv[++i]);
    else if (a === '--allow-paths') i++; // py-solc-x passes it; imports are confined by findImports below
    else if (a.startsWith('--allow-paths=') || a.startsWith('--base-path=')) {
      if (a.startsWith('--base-path=')) opts.basePath = a.slice('--base-path='.length);
    } else if (a === '-' ) { /* stdin marker */ }
    else {
      process.stderr.write(`solc.js: unsupported argument ${a} (only --version and --standard-json)\n`);
      process.exit(2);
    }
  }
  return opts;
}

function makeFindImports(roots) {
  const resolvedRoots = roots.map((r) => path.resolve(r));
  return function findImports(importPath) {
    for (const root of resolvedRoots) {
      const candidate = path.resolve(root, importPath);
      // Never read outside the given roots: a source must not pull in arbitrary files.
      if (!candidate.startsWith(root + path.sep)) continue;
      if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
    }
    return { error: `File not found under ${resolvedRoots.join(', ')}: ${importPath}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.mode === 'version') {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (opts.mode !== 'standard-json') {
    process.stderr.write('usage: solc.js --version | --standard-json [--base-path DIR] < input.json\n');
    process.exit(2);
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: makeFindImports([opts.basePath, ...opts.includePaths]) });
  process.stdout.write(output + '\n');
}

main();
