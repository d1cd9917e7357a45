// The `process` a Jest test sees is a copy: listeners added to it never hear of an unhandled
// rejection or an uncaught exception. The fuzz suites listen on Node's own process, given here.
const { TestEnvironment } = require('jest-environment-node');

class FuzzEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.global.nodeProcess = process;
  }
}

module.exports = FuzzEnvironment;
