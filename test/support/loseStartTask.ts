/**
 * A workflow interceptor for one test (bundled with the workflows by lostStartTask.e2e): when a job's
 * startUsers answers with the mark below, the job's workflow task fails after its users were started, as
 * when the worker running it is killed or the server restarts before the task is recorded. Temporal then
 * runs the task again from the job's history, and the users' reports may already be in it.
 */
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** Set by the test's activity interceptor on the one startUsers answer whose workflow task is lost. */
export const LOSE_TASK_MARK = 'loseThisWorkflowTask';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      async scheduleLocalActivity(input, next) {
        const result = await next(input);
        if (input.activityType === 'startUsers' && (result as Record<string, unknown>)[LOSE_TASK_MARK]) {
          // Not a TemporalFailure: the workflow task fails (and is retried), the workflow does not.
          throw new Error('test: the workflow task that started these users is lost');
        }
        return result;
      },
    },
  ],
});
