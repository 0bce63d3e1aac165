/**
 * Local SGD: H local steps, then every rank takes the average of all ranks' parameters. DiLoCo with
 * outer lr 1 and no outer momentum (snapshot − avg(snapshot − params) = avg(params)).
 */
import type { ProcessGroup } from '../../comm/process_group.js';
import { DiLoCoStrategy } from './diloco.js';

export function createLocalSgdStrategy(group: ProcessGroup, innerSteps: number): DiLoCoStrategy {
  return new DiLoCoStrategy(group, { innerSteps, outerLr: 1, outerMomentum: 0, name: 'local-sgd' });
}
