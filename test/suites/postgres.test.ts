import { postgresSuite, runSuites } from './stores';

runSuites(postgresSuite);
