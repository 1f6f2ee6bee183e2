/** The workflows a bulk-reset worker runs. */
export { bulkReset, progressQuery, userWorkflowId } from './bulkReset';
export { resetUser, userFinishedSignal } from './resetUser';
