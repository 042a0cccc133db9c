// Validates Kubernetes objects against the schemas of the npm package kubernetes-models (Kubernetes
// 1.29+ API, native sidecars included) and @kubernetes-models/cert-manager (cert-manager.io/v1).
// Input on stdin: a JSON array of objects. Output on stdout: a JSON array, one entry per object:
// {"kind", "name", "ok", "errors": [...]}. Exit status 0 when the input could be read (the caller
// judges the entries), 2 when not.
//
// The package's validators check types, enums and required fields but accept unknown fields, so
// containers are also checked key by key against the Container interface that the package declares
// (v1/Container.d.ts): a field that 1.29+ does not know, or a misspelt one, is an error.
"use strict";
const fs = require("fs");
const path = require("path");

const groups = {
  "v1": () => require("kubernetes-models/v1"),
  "apps/v1": () => require("kubernetes-models/apps/v1"),
  "rbac.authorization.k8s.io/v1": () => require("kubernetes-models/rbac.authorization.k8s.io/v1"),
  "admissionregistration.k8s.io/v1": () => require("kubernetes-models/admissionregistration.k8s.io/v1"),
  "policy/v1": () => require("kubernetes-models/policy/v1"),
  "networking.k8s.io/v1": () => require("kubernetes-models/networking.k8s.io/v1"),
  "cert-manager.io/v1": () => require("@kubernetes-models/cert-manager/cert-manager.io/v1"),
};

function containerFields() {
  const dts = fs.readFileSync(path.join(path.dirname(require.resolve("kubernetes-models/v1/Container")),
                                        "Container.d.ts"), "utf8");
  const body = dts.slice(dts.indexOf("interface IContainer"));
  const fields = new Set();
  for (const m of body.slice(0, body.indexOf("}")).matchAll(/^\s+"([A-Za-z]+)"\??:/gm)) fields.add(m[1]);
  if (!fields.has("name") || !fields.has("image")) throw new Error("cannot read the Container fields from Container.d.ts");
  return fields;
}

function podSpecOf(obj) {
  if (obj.kind === "Pod") return obj.spec;
  if (obj.spec && obj.spec.template) return obj.spec.template.spec;
  return null;
}

function main() {
  let objects;
  try {
    objects = JSON.parse(fs.readFileSync(0, "utf8"));
    if (!Array.isArray(objects)) throw new Error("stdin is not a JSON array");
  } catch (e) {
    process.stderr.write("validate.js: " + e.message + "\n");
    process.exit(2);
  }
  const known = containerFields();
  const out = objects.map((obj) => {
    const name = (obj.metadata && (obj.metadata.name || obj.metadata.generateName)) || "";
    const entry = { apiVersion: obj.apiVersion, kind: obj.kind, name, ok: true, errors: [] };
    const group = groups[obj.apiVersion];
    const Model = group && group()[obj.kind];
    if (!Model) {
      entry.ok = false;
      entry.errors.push(`no schema for ${obj.apiVersion} ${obj.kind}`);
      return entry;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      entry.ok = false;
      entry.errors.push(String(e.message || e));
    }
    const spec = podSpecOf(obj);
    for (const list of ["initContainers", "containers"]) {
      for (const [i, c] of ((spec && spec[list]) || []).entries()) {
        for (const key of Object.keys(c)) {
          if (!known.has(key)) {
            entry.ok = false;
            entry.errors.push(`${list}[${i}] (${c.name}): unknown field ${key}`);
          }
        }
      }
    }
    return entry;
  });
  process.stdout.write(JSON.stringify(out) + "\n");
}

main();
