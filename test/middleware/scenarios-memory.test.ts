import { MemoryStore } from 'latchkey';
import { describeScenarios } from '../support/scenarios';

describeScenarios('MemoryStore', () => new MemoryStore({ sweepIntervalMs: 0 }));
