#!/usr/bin/env node
// Part of `npm run build` of @tributary/server: copies the files tsc does not
// emit (the operator page's static assets) next to the compiled code in dist/.
import { cpSync } from "node:fs";

const pkg = new URL("..", import.meta.url);
cpSync(new URL("src/operator-ui/assets", pkg), new URL("dist/operator-ui/assets", pkg), { recursive: true });
