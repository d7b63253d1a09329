/** Writes schema.graphql from the code-first schema: `npm run schema:print`. */
import { writeFile } from "node:fs/promises";
import { printPodflowSchema } from "../src/schema/index.ts";

await writeFile(new URL("../schema.graphql", import.meta.url), printPodflowSchema());
console.log("schema.graphql written");
