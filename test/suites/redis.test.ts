import { redisSuiteSingle, runSuites } from './stores';

runSuites(redisSuiteSingle);
