import { memorySuite, runSuites } from './stores';

runSuites(memorySuite);
