import { cachingMemorySuite, runSuites } from './stores';

runSuites(cachingMemorySuite);
