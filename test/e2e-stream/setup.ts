import { REPLAY_LOG_MODE, releaseOpenReplayLogs } from '../support/replay-log-mode';

// Before the suite's modules load: every gateway the support starts reads the replay log.
process.env[REPLAY_LOG_MODE] = 'on';

// A suite that failed before closing its gateways still leaves no stream on the shared broker.
afterAll(() => releaseOpenReplayLogs());
