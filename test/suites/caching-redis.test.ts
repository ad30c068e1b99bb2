import { cachingRedisSuite, runSuites } from './stores';

runSuites(cachingRedisSuite);
