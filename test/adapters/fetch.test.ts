import { adapterSuite } from './suite.js'

adapterSuite('fetch')
