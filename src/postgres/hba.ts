/**
 * pg_hba.conf details that templates cannot work out themselves. The address column's form is a
 * template helper (hbaaddr), so it lives with the helpers in render/ (postgres/ renders templates, not
 * the other way round).
 */
export { hbaAddress } from '../render/hba-address.js';
