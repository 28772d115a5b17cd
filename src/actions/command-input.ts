/** The `command` action's input, in its own module: command.ts and command-readers.ts both need it. */
export interface CommandInput {
  argv?: string[];
  shell?: string;
  chdir?: string;
  env?: Record<string, string>;
  stdin?: string;
  creates?: string;
  removes?: string;
  unless?: string | string[];
  changed_when?: string | boolean;
  failed_when?: string | boolean;
  expect_rc?: number[];
}
