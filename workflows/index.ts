/** The workflows a bulk-reset worker runs, and the messages the CLI sends them. */
export {
  approveUpdate,
  bulkReset,
  cancelUpdate,
  pauseUpdate,
  progressQuery,
  resumeUpdate,
  userWorkflowId,
} from './bulkReset';
export { resetUser, userFinishedSignal } from './resetUser';
