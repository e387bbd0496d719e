// Package devmodules holds the Caddy modules for development and tests,
// apart from the production adapter: the `eherkenning_simulator` handler (a
// stand-in eHerkenning broker) and the `wijgate_demo_app` handler (a
// stand-in for an application behind wijgate, for `make run`). They
// register themselves when the package is imported; cmd/wijgate imports
// it, as Caddy's modules/standard does for Caddy's modules. The production
// adapter never imports it.
package devmodules
