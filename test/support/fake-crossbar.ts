// The Crossbar stand-in lives in src/demo so `npm run demo` can run it; tests know it by this name.
export { CrossbarStandIn as FakeCrossbar, newAccountId } from '../../src/demo/crossbar-stand-in';
