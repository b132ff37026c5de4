'use strict'
// Loads the prebuilt N-API addon (prebuilds/linux-x64/*.node) or a local build.
module.exports = require('node-gyp-build')(__dirname)
