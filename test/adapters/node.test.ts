import { adapterSuite } from './suite.js'

adapterSuite('node')
