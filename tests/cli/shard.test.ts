// --shard k/n, env/n and auto[/n]: parseShard is a pure function of the option and an environment.
import { describe, expect, it } from 'vitest';
import { parseShard } from '../../cli/common.js';

/** A Slurm array task's variables, as sbatch --array=MIN-MAX sets them. */
const slurm = (id: number, min: number, max: number) => ({
  SLURM_ARRAY_JOB_ID: '4242',
  SLURM_ARRAY_TASK_ID: String(id),
  SLURM_ARRAY_TASK_MIN: String(min),
  SLURM_ARRAY_TASK_MAX: String(max),
  SLURM_ARRAY_TASK_COUNT: String(max - min + 1),
  SLURM_ARRAY_TASK_STEP: '1',
});

describe('parseShard', () => {
  it('reads k/n and env/n as before', () => {
    expect(parseShard(undefined, {})).toBeNull();
    expect(parseShard('3/8', {})).toEqual({ k: 3, n: 8 });
    expect(parseShard('env/8', { JOB_COMPLETION_INDEX: '5' })).toEqual({ k: 5, n: 8 });
    expect(() => parseShard('8/8', {})).toThrow(/need 0 ≤ k < n/);
    expect(() => parseShard('env/8', {})).toThrow(/needs \$JOB_COMPLETION_INDEX/);
    expect(() => parseShard('3-8', {})).toThrow(/must look like k\/n/);
  });

  it('auto: a Slurm job array, 0-based or not', () => {
    expect(parseShard('auto', slurm(0, 0, 3))).toEqual({ k: 0, n: 4 });
    expect(parseShard('auto', slurm(3, 0, 3))).toEqual({ k: 3, n: 4 });
    // --array=1-4: task 1 is shard 0, task 4 shard 3.
    expect(parseShard('auto', slurm(1, 1, 4))).toEqual({ k: 0, n: 4 });
    expect(parseShard('auto', slurm(4, 1, 4))).toEqual({ k: 3, n: 4 });
    expect(parseShard('auto/4', slurm(2, 1, 4))).toEqual({ k: 1, n: 4 });
    // Without MIN/MAX (older Slurm, hand-set variables) the array is taken as 0-based.
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ k: 2, n: 3 });
  });

  it('auto: a Kubernetes Indexed Job, with the count from auto/N or $CNNLAB_SHARD_COUNT', () => {
    expect(parseShard('auto/8', { JOB_COMPLETION_INDEX: '7' })).toEqual({ k: 7, n: 8 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '0', CNNLAB_SHARD_COUNT: '2' })).toEqual({ k: 0, n: 2 });
    expect(parseShard('auto/2', { JOB_COMPLETION_INDEX: '1', CNNLAB_SHARD_COUNT: '2' })).toEqual({ k: 1, n: 2 });
  });

  it('auto: clear errors when no scheduler is found or the values disagree', () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ['auto', {}, /no scheduler found.*SLURM_ARRAY_TASK_ID.*JOB_COMPLETION_INDEX/],
      ['auto/4', { SLURM_JOB_ID: '1' }, /no scheduler found/],
      ['auto', { JOB_COMPLETION_INDEX: '1' }, /not the shard count: give --shard auto\/N or set \$CNNLAB_SHARD_COUNT/],
      ['auto/3', { JOB_COMPLETION_INDEX: '1', CNNLAB_SHARD_COUNT: '4' }, /auto\/3: \$CNNLAB_SHARD_COUNT says 4/],
      ['auto/3', { JOB_COMPLETION_INDEX: '3' }, /need 0 ≤ k < n, got k = 3, n = 3/],
      ['auto/3', { JOB_COMPLETION_INDEX: 'x' }, /\$JOB_COMPLETION_INDEX must be an integer/],
      ['auto', { JOB_COMPLETION_INDEX: '1', CNNLAB_SHARD_COUNT: '' }, /\$CNNLAB_SHARD_COUNT must be an integer/],
      ['auto', { SLURM_ARRAY_TASK_ID: '1' }, /\$SLURM_ARRAY_TASK_COUNT is not/],
      ['auto/5', slurm(1, 0, 3), /auto\/5: \$SLURM_ARRAY_TASK_COUNT says 4/],
      ['auto', { ...slurm(1, 0, 3), JOB_COMPLETION_INDEX: '1' }, /both/],
      // --array=0-6:2 and --array=1,3,5: not one contiguous range, so ID − MIN is no shard index.
      [
        'auto',
        { ...slurm(2, 0, 6), SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_STEP: '2' },
        /not one contiguous range/,
      ],
      ['auto', { ...slurm(3, 1, 5), SLURM_ARRAY_TASK_COUNT: '3' }, /not one contiguous range/],
      ['auto', slurm(7, 0, 3), /outside 0-3/],
      ['auto', { ...slurm(1, 0, 3), SLURM_ARRAY_TASK_MIN: '-1' }, /SLURM_ARRAY_TASK_MIN must be an integer/],
      ['auto/0', { JOB_COMPLETION_INDEX: '0' }, /need 0 ≤ k < n/],
      ['autox', {}, /must look like k\/n/],
    ];
    for (const [v, env, msg] of cases) expect(() => parseShard(v, env), `${v} ${JSON.stringify(env)}`).toThrow(msg);
  });

  it('only reads the environment it is given', () => {
    const env = Object.freeze({ ...slurm(2, 0, 3) });
    expect(parseShard('auto', env)).toEqual({ k: 2, n: 4 });
    expect(env).toEqual(slurm(2, 0, 3));
  });
});
