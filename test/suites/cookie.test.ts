import { cookieSuite, runSuites } from './stores';

runSuites(cookieSuite);
