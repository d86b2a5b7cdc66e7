// Delivery of verification codes. A real gateway plugs in here; until then
// `log` writes the code to the log (phone masked) and `echo` hands it back in
// RequestCodeReply.debug_code (development and tests; refused in production).
// The log sender writes at warn: it is the only delivery channel it has, and
// production runs at warn (it must not go silent there).
import { maskPhone, type Logger } from '../log.js';

export interface SmsSender {
  /** Delivers the code; returns what goes into `debug_code` ("" unless echo). */
  send(phone: string, code: string): string;
}

export function createSmsSender(kind: 'log' | 'echo', log: Logger): SmsSender {
  if (kind === 'echo') return { send: (_phone, code) => code };
  return {
    send(phone, code) {
      log.warn({ phone: maskPhone(phone), smsCode: code }, 'verification code (log SMS sender: plug in a real gateway for production)');
      return '';
    },
  };
}
